// A private PKI for TLS tests, made with the openssl command line (Debian's openssl): a CA, a
// server certificate for 127.0.0.1 / localhost signed by it, a client certificate signed by it,
// and a second CA that signed nothing the server trusts (for "refused" cases).
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './tmp.js';

export interface TestPki {
  dir: string;
  /** Paths of PEM files. */
  files: {
    ca: string;
    serverKey: string;
    serverCert: string;
    clientKey: string;
    clientCert: string;
    otherCa: string;
    otherClientKey: string;
    otherClientCert: string;
  };
  read(file: keyof TestPki['files']): Buffer;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function makeCa(dir: string, name: string): void {
  openssl(
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
      .concat(['-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2'])
      .concat(['-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE'])
      .concat(['-addext', 'keyUsage=critical,keyCertSign,cRLSign']),
    dir,
  );
}

function makeLeaf(dir: string, name: string, ca: string, ext: string): void {
  openssl(
    ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'].concat([
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      `/CN=${name}`,
    ]),
    dir,
  );
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(
    ['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`]
      .concat(['-CAcreateserial', '-out', `${name}.pem`, '-days', '2'])
      .concat(['-extfile', `${name}.ext`]),
    dir,
  );
}

/** Makes the PKI in a temporary directory that is removed when the calling test file ends. */
export function makeTestPki(): TestPki {
  const dir = tempDir('hm-pki');
  makeCa(dir, 'ca');
  makeCa(dir, 'other-ca');
  makeLeaf(
    dir,
    'server',
    'ca',
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n',
  );
  makeLeaf(dir, 'client', 'ca', 'extendedKeyUsage=clientAuth\n');
  makeLeaf(dir, 'other-client', 'other-ca', 'extendedKeyUsage=clientAuth\n');
  const files = {
    ca: join(dir, 'ca.pem'),
    serverKey: join(dir, 'server.key'),
    serverCert: join(dir, 'server.pem'),
    clientKey: join(dir, 'client.key'),
    clientCert: join(dir, 'client.pem'),
    otherCa: join(dir, 'other-ca.pem'),
    otherClientKey: join(dir, 'other-client.key'),
    otherClientCert: join(dir, 'other-client.pem'),
  };
  return { dir, files, read: (f) => readFileSync(files[f]) };
}

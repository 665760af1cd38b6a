// Test certificates made with the openssl CLI: a CA, a server certificate for 127.0.0.1 and
// client certificates signed by that CA or by another one.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '../../support/tmp.js';

export interface TestPki {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A client certificate from an unrelated CA. */
  strangerCert: string;
  strangerKey: string;
  /** Issues another server certificate (e.g. for rotation); returns [cert, key] paths. */
  issueServer(name: string, cn: string): [string, string];
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function makeCa(dir: string, name: string): void {
  openssl(
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'].concat([
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.crt`,
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
    ]),
    dir,
  );
}

function issue(dir: string, ca: string, name: string, cn: string, ext: string): void {
  writeFileSync(path.join(dir, `${name}.ext`), ext + '\n');
  openssl(
    ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'].concat([
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      `/CN=${cn}`,
    ]),
    dir,
  );
  openssl(
    ['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`].concat([
      '-CAcreateserial',
      '-out',
      `${name}.crt`,
      '-days',
      '2',
      '-extfile',
      `${name}.ext`,
    ]),
    dir,
  );
}

/** Makes the PKI in a temporary directory that is removed when the calling test file ends. */
export function makePki(): TestPki {
  const dir = tempDir('hm-pki');
  makeCa(dir, 'ca');
  makeCa(dir, 'stranger-ca');
  const serverExt = 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth';
  issue(dir, 'ca', 'server', 'server-one', serverExt);
  issue(
    dir,
    'ca',
    'client',
    'prometheus',
    'subjectAltName=DNS:prometheus\nextendedKeyUsage=clientAuth',
  );
  issue(dir, 'stranger-ca', 'stranger', 'stranger', 'extendedKeyUsage=clientAuth');
  const p = (f: string): string => path.join(dir, f);
  return {
    dir,
    caCert: p('ca.crt'),
    serverCert: p('server.crt'),
    serverKey: p('server.key'),
    clientCert: p('client.crt'),
    clientKey: p('client.key'),
    strangerCert: p('stranger.crt'),
    strangerKey: p('stranger.key'),
    issueServer: (name, cn) => {
      issue(dir, 'ca', name, cn, serverExt);
      return [p(`${name}.crt`), p(`${name}.key`)];
    },
  };
}

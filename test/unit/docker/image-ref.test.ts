import { describe, expect, it } from 'vitest';
import { imageNameAndTags, parseImageReference } from '../../../src/docker/image-ref.js';

const D = 'sha256:' + 'e3'.repeat(32);
const HEX = 'ab'.repeat(32);

// Every form `docker run` / `docker pull` accepts, with what Docker's reference package makes of
// it: registry, repository (normalised), tag, digest; plus what the resource attributes say.
const VALID: {
  ref: string;
  registry: string;
  repository: string;
  tag?: string;
  digest?: string;
  name: string;
  tags: string[];
}[] = [
  {
    ref: 'busybox',
    registry: 'docker.io',
    repository: 'library/busybox',
    name: 'busybox',
    tags: ['latest'],
  },
  {
    ref: 'busybox:1.36',
    registry: 'docker.io',
    repository: 'library/busybox',
    tag: '1.36',
    name: 'busybox',
    tags: ['1.36'],
  },
  {
    ref: 'library/busybox:1.36',
    registry: 'docker.io',
    repository: 'library/busybox',
    tag: '1.36',
    name: 'library/busybox',
    tags: ['1.36'],
  },
  {
    ref: 'docker.io/library/busybox:1.36',
    registry: 'docker.io',
    repository: 'library/busybox',
    tag: '1.36',
    name: 'docker.io/library/busybox',
    tags: ['1.36'],
  },
  {
    ref: 'docker.io/busybox',
    registry: 'docker.io',
    repository: 'library/busybox',
    name: 'docker.io/busybox',
    tags: ['latest'],
  },
  {
    ref: 'index.docker.io/busybox',
    registry: 'docker.io',
    repository: 'library/busybox',
    name: 'index.docker.io/busybox',
    tags: ['latest'],
  },
  {
    ref: 'grafana/grafana:11.2.0',
    registry: 'docker.io',
    repository: 'grafana/grafana',
    tag: '11.2.0',
    name: 'grafana/grafana',
    tags: ['11.2.0'],
  },
  {
    ref: 'ghcr.io/org/team/app:v1.2.3-rc.1',
    registry: 'ghcr.io',
    repository: 'org/team/app',
    tag: 'v1.2.3-rc.1',
    name: 'ghcr.io/org/team/app',
    tags: ['v1.2.3-rc.1'],
  },
  {
    ref: 'localhost/app',
    registry: 'localhost',
    repository: 'app',
    name: 'localhost/app',
    tags: ['latest'],
  },
  {
    ref: 'localhost:5000/app:dev',
    registry: 'localhost:5000',
    repository: 'app',
    tag: 'dev',
    name: 'localhost:5000/app',
    tags: ['dev'],
  },
  {
    ref: 'registry.example.com:5000/team/app',
    registry: 'registry.example.com:5000',
    repository: 'team/app',
    name: 'registry.example.com:5000/team/app',
    tags: ['latest'],
  },
  {
    ref: 'registry.example.com:5000/team/app:1.0',
    registry: 'registry.example.com:5000',
    repository: 'team/app',
    tag: '1.0',
    name: 'registry.example.com:5000/team/app',
    tags: ['1.0'],
  },
  {
    ref: `registry.example.com:5000/team/app@${D}`,
    registry: 'registry.example.com:5000',
    repository: 'team/app',
    digest: D,
    name: 'registry.example.com:5000/team/app',
    tags: [],
  },
  {
    ref: `registry.example.com:5000/team/app:1.0@${D}`,
    registry: 'registry.example.com:5000',
    repository: 'team/app',
    tag: '1.0',
    digest: D,
    name: 'registry.example.com:5000/team/app',
    tags: ['1.0'],
  },
  {
    ref: `busybox@${D}`,
    registry: 'docker.io',
    repository: 'library/busybox',
    digest: D,
    name: 'busybox',
    tags: [],
  },
  {
    ref: `busybox:1.36@${D}`,
    registry: 'docker.io',
    repository: 'library/busybox',
    tag: '1.36',
    digest: D,
    name: 'busybox',
    tags: ['1.36'],
  },
  {
    ref: '192.168.1.10:5000/app:1',
    registry: '192.168.1.10:5000',
    repository: 'app',
    tag: '1',
    name: '192.168.1.10:5000/app',
    tags: ['1'],
  },
  {
    ref: '[::1]:5000/app:1',
    registry: '[::1]:5000',
    repository: 'app',
    tag: '1',
    name: '[::1]:5000/app',
    tags: ['1'],
  },
  {
    ref: '[fe80::1]/app',
    registry: '[fe80::1]',
    repository: 'app',
    name: '[fe80::1]/app',
    tags: ['latest'],
  },
  {
    ref: 'Registry.Example.com/app',
    registry: 'Registry.Example.com',
    repository: 'app',
    name: 'Registry.Example.com/app',
    tags: ['latest'],
  },
  {
    ref: 'my-registry/app',
    registry: 'docker.io',
    repository: 'my-registry/app',
    name: 'my-registry/app',
    tags: ['latest'],
  },
  {
    ref: 'a/b/c/d/e:x',
    registry: 'docker.io',
    repository: 'a/b/c/d/e',
    tag: 'x',
    name: 'a/b/c/d/e',
    tags: ['x'],
  },
  {
    ref: 'my_app',
    registry: 'docker.io',
    repository: 'library/my_app',
    name: 'my_app',
    tags: ['latest'],
  },
  {
    ref: 'my__app.v2',
    registry: 'docker.io',
    repository: 'library/my__app.v2',
    name: 'my__app.v2',
    tags: ['latest'],
  },
  {
    ref: 'my---app',
    registry: 'docker.io',
    repository: 'library/my---app',
    name: 'my---app',
    tags: ['latest'],
  },
  {
    ref: 'app:V1_final.2-x',
    registry: 'docker.io',
    repository: 'library/app',
    tag: 'V1_final.2-x',
    name: 'app',
    tags: ['V1_final.2-x'],
  },
  {
    ref: `app:${'t'.repeat(128)}`,
    registry: 'docker.io',
    repository: 'library/app',
    tag: 't'.repeat(128),
    name: 'app',
    tags: ['t'.repeat(128)],
  },
];

const INVALID: { ref: string; reason: RegExp }[] = [
  { ref: '', reason: /empty/ },
  { ref: 'Busybox', reason: /path component "Busybox"/ },
  { ref: 'busybox:', reason: /invalid tag ""/ },
  { ref: ':1.0', reason: /no repository name/ },
  { ref: 'busybox:-1', reason: /invalid tag/ },
  { ref: `app:${'t'.repeat(129)}`, reason: /invalid tag/ },
  { ref: 'busybox@sha256:abc', reason: /invalid digest/ },
  { ref: 'busybox@', reason: /invalid digest/ },
  { ref: 'a//b', reason: /empty path component/ },
  { ref: 'app/', reason: /empty path component/ },
  { ref: '-app', reason: /path component "-app"/ },
  { ref: 'app_', reason: /path component "app_"/ },
  { ref: 'a___b', reason: /path component/ },
  { ref: 'registry.example.com:port/app', reason: /invalid registry/ },
  { ref: 'bad_host.example.com/app', reason: /invalid registry/ },
  { ref: 'app with space', reason: /path component/ },
  { ref: `docker.io/${HEX}`, reason: /64 hexadecimal/ },
  { ref: `${'a'.repeat(256)}`, reason: /longer than 255/ },
];

describe('parseImageReference', () => {
  it.each(VALID)('$ref', (row) => {
    const p = parseImageReference(row.ref);
    expect(p).toEqual({
      kind: 'reference',
      name: row.name,
      registry: row.registry,
      repository: row.repository,
      tags: row.tags,
      ...(row.tag !== undefined ? { tag: row.tag } : {}),
      ...(row.digest !== undefined ? { digest: row.digest } : {}),
    });
    expect(imageNameAndTags(row.ref)).toEqual({ name: row.name, tags: row.tags });
  });

  it('treats image ids (sha256:<hex> and the bare 64 hex digits) as ids without tags', () => {
    expect(parseImageReference(`sha256:${HEX}`)).toEqual({ kind: 'id', id: `sha256:${HEX}` });
    expect(parseImageReference(HEX)).toEqual({ kind: 'id', id: `sha256:${HEX}` });
    expect(imageNameAndTags(HEX)).toEqual({ name: `sha256:${HEX}`, tags: [] });
  });

  it.each(INVALID)('rejects $ref with a reason and never throws', ({ ref, reason }) => {
    const p = parseImageReference(ref);
    expect(p.kind).toBe('invalid');
    if (p.kind === 'invalid') expect(p.reason).toMatch(reason);
    const nt = imageNameAndTags(ref);
    expect(nt.tags).toEqual([]);
  });

  it('keeps what stands before a bad digest as the name of an unparsable reference', () => {
    expect(imageNameAndTags('busybox:1.36@sha256:nothex')).toEqual({
      name: 'busybox:1.36',
      tags: [],
    });
  });
});

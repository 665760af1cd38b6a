/**
 * The one image-reference parser of the agent (logs, spans and metrics info use it through
 * `src/docker/identity.ts`). It follows the grammar of Docker's reference package
 * (distribution/reference) and its normalisation rules:
 *
 *   reference := name [ ":" tag ] [ "@" digest ]
 *   name      := [ domain "/" ] path-component { "/" path-component }
 *   domain    := the first component when it holds a "." or a ":", is "localhost", or has an
 *                upper-case letter (host[:port], or [IPv6]:port); else Docker Hub (docker.io)
 *
 * A container's `Config.Image` can also be an image id (`sha256:<64 hex>` or the bare 64 hex
 * digits), which has no name: `kind: 'id'`. Anything else that does not fit the grammar is
 * `kind: 'invalid'` (never thrown: hostile input is normal input).
 */

export interface ImageReference {
  kind: 'reference';
  /** As written, without tag and digest: what `container.image.name` reports (`busybox`). */
  name: string;
  /** Registry host[:port]; `docker.io` when the reference names none. */
  registry: string;
  /** Repository path inside the registry, normalised (`library/busybox` on Docker Hub). */
  repository: string;
  /** The tag as written, or undefined. */
  tag?: string;
  /** `algorithm:hex`, or undefined. */
  digest?: string;
  /** `container.image.tags`: the tag, `latest` when neither tag nor digest is given, else []. */
  tags: string[];
}

export interface ImageIdReference {
  kind: 'id';
  /** `sha256:<hex>` */
  id: string;
}

export interface InvalidImageReference {
  kind: 'invalid';
  raw: string;
  reason: string;
}

export type ParsedImage = ImageReference | ImageIdReference | InvalidImageReference;

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^\w[\w.-]{0,127}$/;
const DIGEST = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
const HOST_LABEL = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const PORT = /^\d+$/;
const IPV6 = /^\[[0-9a-fA-F:.]+\]$/;
const HEX64 = /^[0-9a-f]{64}$/;
const MAX_NAME = 255;

function validDomain(domain: string): boolean {
  let host = domain;
  const m = /^(.*):(\d+)$/.exec(domain);
  if (m && !domain.endsWith(']')) {
    host = m[1] ?? '';
    if (!PORT.test(m[2] ?? '')) return false;
  }
  if (IPV6.test(host)) return true;
  return host !== '' && host.split('.').every((l) => HOST_LABEL.test(l));
}

/** Parses a Docker image reference (or image id). Never throws. */
export function parseImageReference(raw: string): ParsedImage {
  const ref = raw.trim();
  const bad = (reason: string): InvalidImageReference => ({ kind: 'invalid', raw, reason });
  if (ref === '') return bad('empty reference');
  if (/^sha256:[0-9a-f]{64}$/.test(ref)) return { kind: 'id', id: ref };
  if (HEX64.test(ref)) return { kind: 'id', id: `sha256:${ref}` };

  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) return bad(`invalid digest "${digest}"`);
  }
  let tag: string | undefined;
  const slash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > slash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) return bad(`invalid tag "${tag}"`);
  }
  const name = rest;
  if (name === '') return bad('no repository name');
  if (name.length > MAX_NAME) return bad(`repository name longer than ${MAX_NAME} characters`);

  let registry = 'docker.io';
  let path = name;
  const first = name.indexOf('/');
  if (first >= 0) {
    const head = name.slice(0, first);
    if (/[.:]/.test(head) || head === 'localhost' || head.toLowerCase() !== head) {
      if (!validDomain(head)) return bad(`invalid registry "${head}"`);
      registry = head;
      path = name.slice(first + 1);
    }
  }
  if (registry === 'index.docker.io') registry = 'docker.io';
  const parts = path.split('/');
  for (const p of parts) {
    if (!PATH_COMPONENT.test(p)) {
      return bad(
        p === ''
          ? 'empty path component'
          : `invalid repository path component "${p}" (lower-case letters, digits and . _ - separators)`,
      );
    }
  }
  if (registry === 'docker.io' && parts.length === 1 && HEX64.test(path))
    return bad('a repository name cannot be 64 hexadecimal digits');
  const repository = registry === 'docker.io' && parts.length === 1 ? `library/${path}` : path;
  const out: ImageReference = {
    kind: 'reference',
    name,
    registry,
    repository,
    tags: tag !== undefined ? [tag] : digest !== undefined ? [] : ['latest'],
  };
  if (tag !== undefined) out.tag = tag;
  if (digest !== undefined) out.digest = digest;
  return out;
}

/**
 * `container.image.name` and `container.image.tags` of a reference: for an image id the name is
 * the id and there are no tags; for a reference that does not parse, the text before any `@`
 * and no tags.
 */
export function imageNameAndTags(raw: string): { name: string; tags: string[] } {
  const p = parseImageReference(raw);
  if (p.kind === 'reference') return { name: p.name, tags: p.tags };
  if (p.kind === 'id') return { name: p.id, tags: [] };
  const at = raw.indexOf('@');
  return { name: (at >= 0 ? raw.slice(0, at) : raw).trim(), tags: [] };
}

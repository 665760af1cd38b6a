/**
 * Which containers a feature (metrics, logs) covers: include and exclude rules by container name,
 * image and label, written as `name:<glob>`, `image:<glob>`, `label:<key>=<glob>` or
 * `label:<key>` (label present). Globs know `*` (any run of characters, also empty) and `?` (one
 * character); everything else is literal, so a rule can never be a regular expression and a match
 * costs at most O(pattern length × value length), with no backtracking.
 *
 * A container is selected when no include rule is configured or one of them matches, and no
 * exclude rule matches. `image:` rules match the reference the container was created with
 * (`nginx:1.27`, `registry:5000/team/app@sha256:…`) and that reference without its tag or digest
 * (`nginx`), so `image:nginx` means every tag of nginx.
 */
import { z } from 'zod';
import type { ContainerInfo } from './types.js';

export type ContainerPredicate = (container: ContainerInfo) => boolean;

export type SelectionRule =
  | { kind: 'name' | 'image'; glob: string }
  | { kind: 'label'; key: string; glob: string | undefined };

const RULE_SYNTAX = 'expected name:<glob>, image:<glob>, label:<key>=<glob> or label:<key>';

/** Parses one rule; returns an error message (naming the rule) when it is not valid. */
export function parseRule(text: string): SelectionRule | string {
  const colon = text.indexOf(':');
  const kind = colon > 0 ? text.slice(0, colon).trim() : '';
  const rest = colon > 0 ? text.slice(colon + 1) : '';
  if (kind === 'name' || kind === 'image') {
    if (rest === '') return `rule "${text}": the glob is empty; ${RULE_SYNTAX}`;
    return { kind, glob: rest };
  }
  if (kind === 'label') {
    const eq = rest.indexOf('=');
    const key = (eq >= 0 ? rest.slice(0, eq) : rest).trim();
    if (key === '') return `rule "${text}": the label key is empty; ${RULE_SYNTAX}`;
    return { kind, key, glob: eq >= 0 ? rest.slice(eq + 1) : undefined };
  }
  return `rule "${text}": unknown kind "${kind}"; ${RULE_SYNTAX}`;
}

/** A zod array of rules for a config section (each rule checked with a message naming it). */
export function selectionRulesSchema(describe: string) {
  return z
    .array(
      z.string().superRefine((s, ctx) => {
        const r = parseRule(s);
        if (typeof r === 'string') ctx.addIssue({ code: 'custom', message: r });
      }),
    )
    .default([])
    .describe(describe);
}

/**
 * Glob match with `*` and `?`: the pattern is cut at each `*`; the first piece must match at the
 * start, the last at the end, the ones between at their leftmost place (greedy leftmost is exact
 * for `*`-only wildcards), so nothing is ever tried twice.
 */
export function globMatch(glob: string, value: string): boolean {
  const parts = glob.split('*');
  if (parts.length === 1) return glob.length === value.length && pieceAt(glob, value, 0);
  const first = parts[0] as string;
  const last = parts[parts.length - 1] as string;
  if (first.length + last.length > value.length) return false;
  if (!pieceAt(first, value, 0)) return false;
  if (!pieceAt(last, value, value.length - last.length)) return false;
  let pos = first.length;
  const end = value.length - last.length;
  for (let i = 1; i < parts.length - 1; i++) {
    const p = parts[i] as string;
    if (p === '') continue;
    const at = findPiece(p, value, pos, end);
    if (at < 0) return false;
    pos = at + p.length;
  }
  return true;
}

/** Whether piece (with `?` wildcards) matches value at offset. */
function pieceAt(piece: string, value: string, offset: number): boolean {
  if (offset < 0 || offset + piece.length > value.length) return false;
  for (let i = 0; i < piece.length; i++) {
    const c = piece.charCodeAt(i);
    if (c !== 0x3f /* ? */ && c !== value.charCodeAt(offset + i)) return false;
  }
  return true;
}

/** Leftmost offset in [from, end - piece.length] where piece matches, or -1. */
function findPiece(piece: string, value: string, from: number, end: number): number {
  if (!piece.includes('?')) {
    const at = value.indexOf(piece, from);
    return at >= 0 && at + piece.length <= end ? at : -1;
  }
  for (let at = from; at + piece.length <= end; at++) if (pieceAt(piece, value, at)) return at;
  return -1;
}

/** `nginx:1.27` → `nginx`; `registry:5000/app@sha256:…` → `registry:5000/app`. */
export function imageRepository(ref: string): string {
  const at = ref.indexOf('@');
  const noDigest = at >= 0 ? ref.slice(0, at) : ref;
  const slash = noDigest.lastIndexOf('/');
  const colon = noDigest.lastIndexOf(':');
  return colon > slash ? noDigest.slice(0, colon) : noDigest;
}

function ruleMatches(r: SelectionRule, c: ContainerInfo): boolean {
  switch (r.kind) {
    case 'name':
      return globMatch(r.glob, c.name);
    case 'image':
      return globMatch(r.glob, c.image) || globMatch(r.glob, imageRepository(c.image));
    case 'label': {
      const v = c.labels[r.key];
      if (v === undefined) return false;
      return r.glob === undefined || globMatch(r.glob, v);
    }
  }
}

export interface SelectionOptions {
  include?: readonly string[];
  exclude?: readonly string[];
  /**
   * A container label that, set to `false`, leaves the container out (e.g.
   * `harbormaster.metrics.enabled`). Labels only tighten: `true` does not override an exclude.
   */
  optOutLabel?: string;
}

/**
 * The predicate of one feature's rules. Throws (naming the rule) on an invalid one; the config
 * schema has rejected those already.
 */
export function containerSelection(opts: SelectionOptions): ContainerPredicate {
  const parse = (list: readonly string[] | undefined): SelectionRule[] =>
    (list ?? []).map((s) => {
      const r = parseRule(s);
      if (typeof r === 'string') throw new Error(r);
      return r;
    });
  const include = parse(opts.include);
  const exclude = parse(opts.exclude);
  const label = opts.optOutLabel;
  if (include.length === 0 && exclude.length === 0 && label === undefined) return () => true;
  return (c) => {
    if (label !== undefined && c.labels[label]?.trim().toLowerCase() === 'false') return false;
    if (include.length > 0 && !include.some((r) => ruleMatches(r, c))) return false;
    return !exclude.some((r) => ruleMatches(r, c));
  };
}

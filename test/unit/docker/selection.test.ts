import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  containerSelection,
  globMatch,
  imageRepository,
  parseRule,
} from '../../../src/docker/selection.js';
import { loadConfig } from '../../../src/config/load.js';
import { makeContainerInfo } from '../../support/container-info.js';

const c = (over: Parameters<typeof makeContainerInfo>[0]) => makeContainerInfo(over);

/** Reference semantics of a glob: the same pattern as an (anchored) regular expression. */
function globRegex(glob: string): RegExp {
  const src = [...glob]
    .map((ch) => (ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${src}$`, 's');
}

describe('globMatch', () => {
  it('matches * and ? like the equivalent regular expression', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[ab*?]{0,8}$/),
        fc.stringMatching(/^[ab]{0,10}$/),
        (glob, value) => globMatch(glob, value) === globRegex(glob).test(value),
      ),
      { numRuns: 3000 },
    );
  });

  it('handles literal text, prefixes, suffixes and middles', () => {
    expect(globMatch('web-*', 'web-1')).toBe(true);
    expect(globMatch('web-*', 'api-1')).toBe(false);
    expect(globMatch('*-db', 'orders-db')).toBe(true);
    expect(globMatch('a*b*c', 'a-c-b-c')).toBe(true);
    expect(globMatch('a*b*c', 'a-c-c')).toBe(false);
    expect(globMatch('exact', 'exact')).toBe(true);
    expect(globMatch('exact', 'exactly')).toBe(false);
    expect(globMatch('.*', 'anything')).toBe(false); // a glob, never a regular expression
  });

  it('answers a value crafted against backtracking matchers (one pass per * piece)', () => {
    // a backtracking matcher would not finish this within the test timeout
    expect(globMatch('*a*a*a*a*a*a*a*a*b', 'a'.repeat(20_000))).toBe(false);
    expect(globMatch('*a*a*a*a*a*a*a*a*b', 'a'.repeat(20_000) + 'b')).toBe(true);
  });
});

describe('rules', () => {
  it('rejects malformed rules with a message naming the rule', () => {
    expect(parseRule('nmae:web')).toMatch(/rule "nmae:web": unknown kind "nmae"/);
    expect(parseRule('web-*')).toMatch(/rule "web-\*": unknown kind ""/);
    expect(parseRule('name:')).toMatch(/the glob is empty/);
    expect(parseRule('label:=x')).toMatch(/the label key is empty/);
    expect(parseRule('label:tier=front*')).toEqual({ kind: 'label', key: 'tier', glob: 'front*' });
    expect(parseRule('label:tier')).toEqual({ kind: 'label', key: 'tier', glob: undefined });
  });

  it('config: an invalid rule is a config error with its path', () => {
    expect(() =>
      loadConfig({ env: { HARBORMASTER_METRICS_EXCLUDE_CONTAINERS: 'name:ok,bogus' } }),
    ).toThrow(/metrics\.exclude_containers\.1: rule "bogus"/);
    const cfg = loadConfig({
      env: {
        HARBORMASTER_METRICS_EXCLUDE_CONTAINERS: 'name:tmp-*,label:ci',
        HARBORMASTER_LOGS_INCLUDE_CONTAINERS: 'image:nginx',
      },
    }).config;
    expect(cfg.metrics.exclude_containers).toEqual(['name:tmp-*', 'label:ci']);
    expect(cfg.logs.include_containers).toEqual(['image:nginx']);
    expect(cfg.logs.exclude_containers).toEqual([]);
  });

  it('image rules match the reference and the repository without tag or digest', () => {
    expect(imageRepository('nginx:1.27')).toBe('nginx');
    expect(imageRepository('registry:5000/team/app:2')).toBe('registry:5000/team/app');
    expect(imageRepository('registry:5000/team/app')).toBe('registry:5000/team/app');
    expect(imageRepository('app@sha256:' + 'a'.repeat(64))).toBe('app');
    const only = containerSelection({ include: ['image:nginx'] });
    expect(only(c({ id: '1', image: 'nginx:1.27' }))).toBe(true);
    expect(only(c({ id: '2', image: 'nginx' }))).toBe(true);
    expect(only(c({ id: '3', image: 'nginx-exporter:1' }))).toBe(false);
    expect(containerSelection({ include: ['image:*:1.2?'] })(c({ id: '4', image: 'x:1.27' }))).toBe(
      true,
    );
  });

  it('include, then exclude, then the opt-out label; labels only tighten', () => {
    const sel = containerSelection({
      include: ['name:web-*', 'label:tier=front*'],
      exclude: ['name:*-canary', 'label:ci'],
      optOutLabel: 'harbormaster.metrics.enabled',
    });
    expect(sel(c({ id: '1', name: 'web-1' }))).toBe(true);
    expect(sel(c({ id: '2', name: 'api', labels: { tier: 'frontend' } }))).toBe(true);
    expect(sel(c({ id: '3', name: 'api', labels: { tier: 'backend' } }))).toBe(false);
    expect(sel(c({ id: '4', name: 'web-canary' }))).toBe(false);
    expect(sel(c({ id: '5', name: 'web-2', labels: { ci: '' } }))).toBe(false);
    expect(
      sel(c({ id: '6', name: 'web-3', labels: { 'harbormaster.metrics.enabled': 'false' } })),
    ).toBe(false);
    expect(
      sel(c({ id: '7', name: 'web-4', labels: { 'harbormaster.metrics.enabled': 'FALSE ' } })),
    ).toBe(false);
    // "true" does not bring back an excluded container
    expect(
      sel(c({ id: '8', name: 'web-canary', labels: { 'harbormaster.metrics.enabled': 'true' } })),
    ).toBe(false);
    // no rules: everything
    expect(containerSelection({})(c({ id: '9', name: 'anything' }))).toBe(true);
  });
});

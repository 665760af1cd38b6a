import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { applyReload, changedKeys, type LiveSettings } from '../../src/reload.js';

const cfg = (flags: Record<string, string> = {}) => loadConfig({ env: {}, flags }).config;

describe('applyReload', () => {
  it('applies live settings and names the ones that need a restart, keeping their old values', async () => {
    const prev = cfg();
    const next = cfg({ 'log-level': 'debug', listen: '127.0.0.1:1', 'state-dir': '/elsewhere' });
    expect(changedKeys(prev, next).sort()).toEqual(['listen', 'log_level', 'state_dir']);
    const seen: string[] = [];
    const groups: LiveSettings[] = [
      { keys: ['log_level'], apply: (c) => void seen.push(c.log_level) },
    ];
    const r = await applyReload(prev, next, groups);
    expect(seen).toEqual(['debug']);
    expect(r.applied).toEqual(['log_level']);
    expect(r.restartNeeded.sort()).toEqual(['listen', 'state_dir']);
    expect(r.effective.log_level).toBe('debug');
    expect(r.effective.listen).toBe(prev.listen);
    expect(r.effective.state_dir).toBe(prev.state_dir);
  });

  it('keeps the old value of a group whose apply fails, and says why', async () => {
    const prev = cfg();
    const next = cfg({ 'logs-processing-drop-pattern': 'DEBUG' });
    expect(changedKeys(prev, next)).toEqual(['logs.processing.drop_pattern']);
    const r = await applyReload(prev, next, [
      {
        keys: ['logs.processing'],
        apply: () => {
          throw new Error('no reload hook');
        },
      },
    ]);
    expect(r.restartNeeded.join(' ')).toMatch(/no reload hook/);
    expect(JSON.stringify(r.effective.logs.processing)).toBe(JSON.stringify(prev.logs.processing));
  });

  it('runs groups marked always even when none of their keys changed', async () => {
    const prev = cfg();
    let runs = 0;
    const web: LiveSettings = { keys: ['web_config_file'], apply: () => void runs++ };
    const r = await applyReload(prev, cfg(), [web], new Set([web]));
    expect(runs).toBe(1);
    expect(r.changed).toEqual([]);
  });
});

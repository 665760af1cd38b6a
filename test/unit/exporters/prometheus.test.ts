import { Counter, Gauge } from 'prom-client';
import { describe, expect, it } from 'vitest';
import {
  MetricsExporter,
  omitFamilies,
  toOpenMetrics,
  wantsOpenMetrics,
} from '../../../src/exporters/prometheus.js';

describe('wantsOpenMetrics', () => {
  it('follows the Accept header Prometheus sends', () => {
    expect(wantsOpenMetrics(undefined)).toBe(false);
    expect(wantsOpenMetrics('text/plain;version=0.0.4')).toBe(false);
    expect(
      wantsOpenMetrics(
        'application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2',
      ),
    ).toBe(true);
    expect(wantsOpenMetrics('text/plain;q=1,application/openmetrics-text;q=0.1')).toBe(false);
  });
});

describe('MetricsExporter', () => {
  it('serves both formats from one registry without renaming counters', async () => {
    const m = new MetricsExporter();
    new Counter({ name: 'x_events_total', help: 'Events.', registers: [m.registry] }).inc(3);
    new Gauge({ name: 'x_up', help: 'Up.', registers: [m.registry] }).set(1);
    m.addProvider({
      render: () => '# HELP y_total Y.\n# TYPE y_total counter\ny_total{a="b"} 2\n',
    });
    const om = await m.render(true);
    expect(om.contentType).toMatch(/openmetrics/);
    expect(om.body).toContain('# TYPE x_events counter\n');
    expect(om.body).toContain('x_events_total 3\n');
    expect(om.body).toContain('# TYPE y counter\ny_total{a="b"} 2\n');
    expect(om.body.endsWith('# EOF\n')).toBe(true);
    const text = await m.render(false);
    expect(text.body).toContain('# TYPE x_events_total counter\nx_events_total 3\n');
    expect(text.body).not.toContain('# EOF');
  });
  it('maps untyped to unknown in OpenMetrics', () => {
    expect(toOpenMetrics('# TYPE z untyped\nz 1\n')).toBe('# TYPE z unknown\nz 1\n# EOF\n');
  });
});

describe('omitFamilies', () => {
  it('drops whole families and keeps the rest intact', () => {
    const text =
      '# HELP a_total A.\n# TYPE a_total gauge\na_total 1\n' +
      '# HELP b B.\n# TYPE b gauge\nb{x="1"} 2\nb{x="2"} 3\n' +
      '# HELP c_total C.\n# TYPE c_total gauge\nc_total{y="z"} 4\n';
    expect(omitFamilies(text, (n) => n.endsWith('_total'))).toBe(
      '# HELP b B.\n# TYPE b gauge\nb{x="1"} 2\nb{x="2"} 3\n',
    );
  });
});

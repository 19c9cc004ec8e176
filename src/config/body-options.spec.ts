import { BalancerConfigError } from './balancer-config.error';
import { DEFAULTS, resolveBalancerOptions } from './resolve-options';
import { parseBalancerYaml } from './yaml-config.loader';

describe('request-body options', () => {
  it('defaults: 100 MiB queue bytes, 10 s body timeout, no balancer body parser', () => {
    const o = resolveBalancerOptions({});
    expect(o.maxQueueBytes).toBe(DEFAULTS.maxQueueBytes);
    expect(o.maxQueueBytes).toBe(100 * 1024 * 1024);
    expect(o.bodyTimeout).toBe(10);
    expect(o.bodyLingerMs).toBe(2000);
    expect(o.bodyParser).toBeNull();
  });

  it('bodyLingerMs and probe.lockTtlMs: set from options or YAML, bad values named', () => {
    expect(resolveBalancerOptions({ bodyLingerMs: 500 }).bodyLingerMs).toBe(500);
    expect(resolveBalancerOptions({ probe: { lockTtlMs: 3000 } }).probe.lockTtlMs).toBe(3000);
    expect(resolveBalancerOptions({}).probe.lockTtlMs).toBe(15_000);
    const yaml = parseBalancerYaml('body_linger_ms: 750\nprobe:\n  lock_ttl_ms: 4000\n', 'b.yml');
    const fromYaml = resolveBalancerOptions(yaml.options);
    expect([fromYaml.bodyLingerMs, fromYaml.probe.lockTtlMs]).toEqual([750, 4000]);
    expect(() => resolveBalancerOptions({ bodyLingerMs: 1.5, probe: { lockTtlMs: 100 } })).toThrow(
      BalancerConfigError,
    );
    let message = '';
    try {
      resolveBalancerOptions({ bodyLingerMs: 1.5, probe: { lockTtlMs: 100 } });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toContain('bodyLingerMs must be a whole number of milliseconds');
    expect(message).toContain('probe.lockTtlMs');
  });

  it("waitingPings: 'auto' by default, from options or YAML; another value is named", () => {
    expect(resolveBalancerOptions({}).waitingPings).toBe('auto');
    expect(resolveBalancerOptions({ waitingPings: 'never' }).waitingPings).toBe('never');
    const yaml = parseBalancerYaml('waiting_pings: always\n', 'b.yml');
    expect(resolveBalancerOptions(yaml.options).waitingPings).toBe('always');
    expect(() =>
      resolveBalancerOptions({ waitingPings: 'sometimes' as unknown as 'auto' }),
    ).toThrow(/waitingPings/);
  });

  it('bodyParser: true takes body-parser defaults; an object sets limit and rawBody', () => {
    expect(resolveBalancerOptions({ bodyParser: true }).bodyParser).toEqual({
      limit: '100kb',
      rawBody: false,
    });
    expect(
      resolveBalancerOptions({ bodyParser: { limit: '10mb', rawBody: true } }).bodyParser,
    ).toEqual({ limit: '10mb', rawBody: true });
  });

  it('names every bad value', () => {
    let error: unknown;
    try {
      resolveBalancerOptions({
        maxQueueBytes: -1,
        bodyTimeout: 'soon' as unknown as number,
        bodyParser: { limit: 'huge' },
        endpoints: { '/upload': { maxQueueBytes: 1.5 } },
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(BalancerConfigError);
    const message = (error as Error).message;
    expect(message).toContain('maxQueueBytes must be a whole number of bytes');
    expect(message).toContain('bodyTimeout must be a number of seconds');
    expect(message).toContain("bodyParser must be true, false or { limit: '10mb'");
    expect(message).toContain('endpoints./upload.maxQueueBytes must be a whole number of bytes');
  });

  it('reads the YAML keys max_queue_bytes, body_timeout and body_parser', () => {
    const yaml = parseBalancerYaml(
      [
        'max_queue_bytes: 1048576',
        'body_timeout: 5',
        'body_parser:',
        '  limit: 10mb',
        '  raw_body: true',
        'endpoints:',
        '  /upload:',
        '    max_queue_bytes: 2048',
      ].join('\n'),
      'balancer.yml',
    );
    const o = resolveBalancerOptions(yaml.options);
    expect(o.maxQueueBytes).toBe(1048576);
    expect(o.bodyTimeout).toBe(5);
    expect(o.bodyParser).toEqual({ limit: '10mb', rawBody: true });
    expect(o.endpoints['/upload'].maxQueueBytes).toBe(2048);
  });
});

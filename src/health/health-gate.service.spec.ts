import { Logger } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import type { HealthIndicatorFunction } from '@nestjs/terminus';
import { waitFor } from '../../test/harness/wait-for';
import { AdmissionGate } from '../admission/admission-gate';
import { BalancerModule } from '../balancer/balancer.module';
import { HealthGateService } from './health-gate.service';

/** The health gate without an HTTP server (an application context): indicators only. */
async function start(
  healthIndicators: HealthIndicatorFunction[],
  extra = {},
): Promise<TestingModule> {
  const ref = await Test.createTestingModule({
    imports: [
      BalancerModule.forRoot({
        probeOnStartup: false,
        healthCheckInterval: 0.05,
        healthTimeout: 0.2,
        healthFailureThreshold: 1,
        healthIndicators,
        ...extra,
      }),
    ],
  }).compile();
  ref.useLogger(false);
  return ref.init();
}

describe('HealthGateService', () => {
  let ref: TestingModule | undefined;
  afterEach(async () => {
    await ref?.close();
    ref = undefined;
    jest.restoreAllMocks();
  });

  it('counts an indicator that throws as a failed check', async () => {
    let fail = true;
    ref = await start([
      () => {
        if (fail) throw new Error('model file missing');
        return { model: { status: 'up' } };
      },
    ]);
    const health = ref.get(HealthGateService);
    const gate = ref.get(AdmissionGate);
    await waitFor(() => !gate.isOpen, 10_000, 'gate closed');
    expect(gate.closedReason).toBe('unhealthy');
    expect(health.status().lastFailures).toEqual(['indicators: model file missing']);
    fail = false;
    await waitFor(() => gate.isOpen, 10_000, 'gate reopened');
  });

  it('counts an indicator that does not answer within healthTimeout as a failed check', async () => {
    ref = await start([() => new Promise(() => {})]);
    const health = ref.get(HealthGateService);
    await waitFor(() => !ref!.get(AdmissionGate).isOpen, 10_000, 'gate closed');
    expect(health.status().lastFailures).toEqual([
      'indicators: indicators gave no answer within 200 ms',
    ]);
  });

  it('has no HTTP source without an HTTP server, and says so when nothing else is set', async () => {
    const log = jest.spyOn(Logger.prototype, 'log');
    ref = await start([]);
    expect(ref.get(HealthGateService).status()).toMatchObject({
      http: 'off',
      scheduler: 'none',
      checks: 0,
    });
    expect(log.mock.calls.map((c) => String(c[0]))).toContain(
      'health gating is off (this app has no HTTP server and no health indicators are set)',
    );
  });

  it('stays quiet with logger: false', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn');
    ref = await start([() => ({ model: { status: 'down' } })], { logger: false });
    await waitFor(() => !ref!.get(AdmissionGate).isOpen, 10_000, 'gate closed');
    expect(warn).not.toHaveBeenCalled();
  });
});

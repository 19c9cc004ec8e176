import type { Provider } from '@nestjs/common';
import { ProbeRunner } from './probe-runner.service';
import { ProbeService } from './probe.service';

/** Providers of the probe feature, registered by BalancerModule. */
export const PROBE_PROVIDERS: Provider[] = [ProbeService, ProbeRunner];

/** Injectable by the app: `ProbeRunner.whenIdle()` waits for the startup probes. */
export const PROBE_EXPORTS: Provider[] = [ProbeRunner];

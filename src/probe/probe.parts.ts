import type { Provider } from '@nestjs/common';

/** Providers of the probe feature, registered by BalancerModule. */
export const PROBE_PROVIDERS: Provider[] = [];

import type { Provider } from '@nestjs/common';
import { AdaptiveCapacity } from './adaptive-capacity.service';

/** Providers of the adaptive-capacity feature, registered by BalancerModule. */
export const ADAPTIVE_PROVIDERS: Provider[] = [AdaptiveCapacity];

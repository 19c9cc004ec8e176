import { SetMetadata } from '@nestjs/common';
import { BALANCED_METADATA } from '../config/balancer.constants';
import type { EndpointOptions, EndpointProbeOptions } from '../config/balancer-options';

/** Settings for `@Balanced()`; options' `endpoints[path]` win over these. */
export interface BalancedOptions extends Pick<
  EndpointOptions,
  'capacity' | 'queueTimeout' | 'maxQueue' | 'maxQueueBytes' | 'pool'
> {
  /** How the probe calls this route (method, headers, body, concrete path). */
  probe?: EndpointProbeOptions;
}

/**
 * Put a route (method) or every route of a controller (class) under admission control.
 * Method-level settings override class-level ones.
 */
export const Balanced = (options: BalancedOptions = {}): ClassDecorator & MethodDecorator =>
  SetMetadata(BALANCED_METADATA, options);

import { plainToInstance, Type } from 'class-transformer';
import { IsOptional, ValidateNested, validateSync } from 'class-validator';
import { QueueRules } from '../config/endpoint-options';
import { EndpointProbeOptions } from '../config/probe-options';
import {
  overloadConflicts,
  OverloadRules,
  type OverloadSettings,
  type PriorityFunction,
  type TenantFunction,
} from '../config/overload-options';
import { collect, VALIDATE } from '../config/validation-report';
import {
  deadlineConflicts,
  DeadlineRules,
  type DeadlineFunction,
  type DeadlineSettings,
} from '../config/deadline-options';
import {
  costConflicts,
  CostRules,
  type CostFunction,
  type CostSettings,
} from '../config/cost-options';

/** What `@Balanced()` accepts, with the same rules as `endpoints[path]` in the module options. */
class BalancedOptionsSchema implements OverloadSettings, DeadlineSettings, CostSettings {
  @QueueRules.capacity()
  capacity?: number;

  @QueueRules.queueTimeout()
  queueTimeout?: number;

  @QueueRules.maxQueue()
  maxQueue?: number;

  @QueueRules.maxQueueBytes()
  maxQueueBytes?: number;

  @QueueRules.pool()
  pool?: string;

  @IsOptional()
  @ValidateNested()
  @Type(() => EndpointProbeOptions)
  probe?: EndpointProbeOptions;

  @OverloadRules.queueTargetMs()
  queueTargetMs?: number;

  @OverloadRules.tenant()
  tenant?: TenantFunction;

  @OverloadRules.tenantHeader()
  tenantHeader?: string;

  @OverloadRules.maxQueuePerTenant()
  maxQueuePerTenant?: number;

  @OverloadRules.priority()
  priority?: PriorityFunction;

  @OverloadRules.priorityHeader()
  priorityHeader?: string;

  @OverloadRules.priorityAging()
  priorityAging?: number;

  @DeadlineRules.deadlineHeader()
  deadlineHeader?: string;

  @DeadlineRules.deadline()
  deadline?: DeadlineFunction;
  @CostRules.cost()
  cost?: CostFunction;

  @CostRules.costHeader()
  costHeader?: string;

  @CostRules.maxQueueCost()
  maxQueueCost?: number;
}

/**
 * Problems with the options of one `@Balanced()`, each naming `where` (the route) and the key,
 * e.g. `@Balanced() on Api.predict (POST /predict): capacty: unknown option`.
 */
export function validateBalancedOptions(options: unknown, where: string): string[] {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    return [`${where}: options must be an object`];
  }
  const problems: string[] = [];
  const schema = plainToInstance(BalancedOptionsSchema, options);
  collect(validateSync(schema, VALIDATE), [], (path) => `${where}: ${path.join('.')}`, problems);
  problems.push(...overloadConflicts(schema, where));
  problems.push(...deadlineConflicts(schema, where));
  problems.push(...costConflicts(schema, where));
  return problems;
}

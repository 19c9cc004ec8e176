import { plainToInstance, Type } from 'class-transformer';
import {
  IsInt,
  IsNumber,
  IsOptional,
  IsString,
  Min,
  ValidateNested,
  validateSync,
} from 'class-validator';
import { EndpointProbeOptions } from '../config/probe-options';
import {
  overloadConflicts,
  OverloadRules,
  type OverloadSettings,
  type PriorityFunction,
  type TenantFunction,
} from '../config/overload-options';
import { collect, VALIDATE } from '../config/validation-report';

/** What `@Balanced()` accepts, with the same rules as `endpoints[path]` in the module options. */
class BalancedOptionsSchema implements OverloadSettings {
  @IsOptional()
  @IsInt({ message: '$property must be a positive integer' })
  @Min(1, { message: '$property must be a positive integer' })
  capacity?: number;

  @IsOptional()
  @IsNumber({}, { message: '$property must be a number of seconds' })
  @Min(0)
  queueTimeout?: number;

  @IsOptional()
  @IsInt()
  @Min(0)
  maxQueue?: number;

  @IsOptional()
  @IsInt({ message: '$property must be a whole number of bytes' })
  @Min(0, { message: '$property must be a whole number of bytes' })
  maxQueueBytes?: number;

  @IsOptional()
  @IsString()
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
  return problems;
}

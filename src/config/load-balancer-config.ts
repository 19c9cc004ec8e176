import type { BalancerOptions } from './balancer-options';
import { resolveBalancerOptions } from './resolve-options';
import { readBalancerYaml } from './yaml-config.loader';

/**
 * Read and validate a `balancer.yml` (snake_case keys, as fastapi-balancer wrote them) and
 * return camelCase options for `BalancerModule.forRoot()` or `BenchBalancer`.
 * Throws `BalancerConfigError` naming the line of malformed YAML and every invalid key.
 */
export function loadBalancerConfig(path: string): BalancerOptions {
  resolveBalancerOptions(path); // validate: throws with every problem and its line
  return readBalancerYaml(path).options;
}

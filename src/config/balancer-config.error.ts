/** Thrown at startup when the options or the YAML file are not usable. Names every problem. */
export class BalancerConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(
      problems.length === 1
        ? `Invalid balancer configuration (${source}): ${problems[0]}`
        : `Invalid balancer configuration (${source}):\n  - ${problems.join('\n  - ')}`,
    );
    this.name = 'BalancerConfigError';
  }
}

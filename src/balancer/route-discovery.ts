import {
  Inject,
  Injectable,
  Logger,
  RequestMethod,
  VersioningType,
  type Type,
} from '@nestjs/common';
import {
  GUARDS_METADATA,
  HOST_METADATA,
  PATH_METADATA,
  METHOD_METADATA,
  VERSION_METADATA,
} from '@nestjs/common/constants';
import {
  ApplicationConfig,
  DiscoveryService,
  MetadataScanner,
  ModulesContainer,
  Reflector,
} from '@nestjs/core';
import { AdmissionGuard } from '../admission/admission.guard';
import { PoolRegistry, type PoolRoute, type ResolvedPool } from '../admission/pool-registry';
import { RouteTable } from '../admission/route-table';
import { modulePaths } from './module-paths';
import { validateBalancedOptions } from '../admission/balanced-options.validation';
import { BalancerConfigError } from '../config/balancer-config.error';
import { BALANCED_METADATA, BALANCER_OPTIONS } from '../config/balancer.constants';
import {
  declaredBalanced,
  mergeBalancedOptions,
  type BalancedOptions,
} from '../admission/balanced.decorator';
import { OverloadPolicy } from '../admission/overload-policy';
import { mergeOverloadSettings } from '../config/overload-options';
import { DeadlinePolicy } from '../admission/deadline-policy';
import { mergeDeadlineSettings } from '../config/deadline-options';
import { CostPolicy } from '../admission/cost-policy';
import { mergeCostSettings } from '../config/cost-options';
import type { EndpointOptions } from '../config/balancer-options';
import { excludedFromGlobalPrefix } from '../config/global-prefix';
import { normalizePath, type ResolvedBalancerOptions } from '../config/resolve-options';

interface DiscoveredRoute extends PoolRoute {
  /** The controller class (what `context.getClass()` returns for this route). */
  controller: object;
  name: string;
  balanced?: BalancedOptions;
  /** `AdmissionGuard` is on the route (controller or handler metadata). */
  decorated: boolean;
  /** Served under a host or a header / media-type version. */
  constrained: boolean;
}

function asArray<T>(v: T | T[] | undefined): T[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

/** The routes of a controller for an error message: the first three, then how many more. */
function routeList(routes: string[]): string {
  if (routes.length === 0) return 'no routes';
  const more = routes.length - 3;
  return more > 0 ? `${routes.slice(0, 3).join('; ')}; ${more} more` : routes.join('; ');
}

/**
 * Finds watched routes at bootstrap: `@Balanced()` on a handler or controller, or a route whose
 * served path is a key of `endpoints`. Paths include the global prefix, RouterModule paths, URI
 * versions and controller paths, exactly as they are served.
 */
@Injectable()
export class RouteDiscovery {
  private readonly logger = new Logger('BalancerModule');

  constructor(
    @Inject(BALANCER_OPTIONS) private readonly options: ResolvedBalancerOptions,
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly reflector: Reflector,
    private readonly config: ApplicationConfig,
    private readonly modules: ModulesContainer,
    private readonly registry: PoolRegistry,
    private readonly table: RouteTable,
  ) {}

  private done = false;

  /**
   * Fill the registry (once). Called from `BalancerModule.configure()`, before Nest registers
   * the routes, so the module knows whether the global interceptor is needed. Throws a
   * `BalancerConfigError` naming every route whose `@Balanced()` options are not valid.
   */
  discover(): ResolvedPool[] {
    if (this.done) return this.registry.all();
    this.done = true;
    const problems: string[] = [];
    const routes = this.routes(problems);
    if (problems.length > 0) throw new BalancerConfigError('@Balanced()', problems);
    const balancerPaths = new Set([`/${this.options.routePrefix}`]);
    const isOwn = (path: string): boolean =>
      [...balancerPaths].some((p) => path === p || path.startsWith(`${p}/`)) ||
      path === this.options.ui.path ||
      path.startsWith(`${this.options.ui.path}/`);
    const health = this.options.healthEndpoint ? normalizePath(this.options.healthEndpoint) : null;

    const matchedKeys = new Set<string>();
    for (const route of routes) {
      const configured = this.options.endpoints[route.path];
      const methodOk =
        !configured?.method || route.method === 'ALL' || configured.method === route.method;
      const byOptions = configured !== undefined && methodOk;
      if (configured !== undefined) matchedKeys.add(route.path);
      let pool: ResolvedPool | null = null;
      if ((route.balanced || byOptions) && !isOwn(route.path)) {
        if (health !== null && route.path === health) {
          this.log(
            'warn',
            `${route.method} ${route.path} is the health endpoint; it is never gated or queued`,
          );
        } else {
          pool = this.attach(route, byOptions ? configured : undefined);
        }
      }
      this.table.add({
        method: route.method,
        path: route.path,
        controller: route.controller,
        name: route.name,
        pool,
        decorated: route.decorated,
        constrained: route.constrained,
      });
    }
    for (const key of Object.keys(this.options.endpoints)) {
      if (!matchedKeys.has(key)) {
        this.log(
          'warn',
          `endpoints["${key}"] matches no route of this app (routes are matched by their served path, global prefix included)`,
        );
      }
    }
    return this.registry.all();
  }

  private attach(route: DiscoveredRoute, configured: EndpointOptions | undefined): ResolvedPool {
    const o = this.options;
    const b = route.balanced ?? {};
    // Precedence: options.endpoints[path] > @Balanced() > global defaults.
    const key = configured?.pool ?? b.pool ?? route.path;
    let pool = this.registry.get(key);
    if (!pool) {
      const queueTimeout = configured?.queueTimeout ?? b.queueTimeout ?? o.queueTimeout;
      const probePath =
        configured?.path ??
        b.probe?.path ??
        (route.path.includes(':') || route.path.includes('*') ? null : route.path);
      pool = {
        key,
        routes: [],
        manualCapacity: configured?.capacity ?? b.capacity,
        queueTimeoutMs: queueTimeout * 1000,
        maxQueue: configured?.maxQueue ?? b.maxQueue ?? o.maxQueue,
        maxQueueBytes: configured?.maxQueueBytes ?? b.maxQueueBytes ?? o.maxQueueBytes,
        retryAfter: Math.max(1, Math.ceil(queueTimeout)),
        overload: OverloadPolicy.from(
          key,
          mergeOverloadSettings([configured, b], o.queueTargetMs),
          o.logger,
        ),
        deadline: DeadlinePolicy.from(
          key,
          mergeDeadlineSettings([configured, b], o.deadlineHeader),
          o.logger,
        ),
        cost: CostPolicy.from(key, mergeCostSettings([configured, b]), o.logger),
        probe: {
          method:
            configured?.method ??
            b.probe?.method ??
            (route.method === 'ALL' ? 'GET' : route.method),
          path: probePath,
          headers: { ...(b.probe?.headers ?? {}), ...(configured?.headers ?? {}) },
          body: configured?.body ?? b.probe?.body,
        },
        probeStatus: { state: 'pending' },
      };
    } else {
      const cap = configured?.capacity ?? b.capacity;
      if (cap !== undefined && pool.manualCapacity !== undefined && cap !== pool.manualCapacity) {
        this.log(
          'warn',
          `pool "${key}": routes disagree on capacity (${pool.manualCapacity} vs ${cap}); using ${pool.manualCapacity}`,
        );
      }
      pool.manualCapacity ??= cap;
    }
    pool.routes.push({ method: route.method, path: route.path });
    this.registry.addPool(pool);
    return pool;
  }

  private routes(problems: string[]): DiscoveredRoute[] {
    const out: DiscoveredRoute[] = [];
    const prefix = this.config.getGlobalPrefix();
    const versioning = this.config.getVersioning();
    const moduleRoutes = modulePaths(this.modules);
    for (const wrapper of this.discovery.getControllers()) {
      const { instance, metatype } = wrapper;
      if (!instance || !metatype) continue;
      const hostCtor = wrapper.host?.metatype;
      const modulePath = hostCtor ? moduleRoutes.get(hostCtor) : undefined;
      const host: unknown = Reflect.getMetadata(HOST_METADATA, metatype);
      const classGuards = (Reflect.getMetadata(GUARDS_METADATA, metatype) as unknown[]) ?? [];
      const controllerPaths = asArray<string>(Reflect.getMetadata(PATH_METADATA, metatype));
      const controllerVersion = Reflect.getMetadata(VERSION_METADATA, metatype);
      const classBalanced = this.reflector.get<BalancedOptions | undefined>(
        BALANCED_METADATA,
        metatype as Type,
      );
      const className = (metatype as { name?: string }).name ?? 'controller';
      const classRoutes: string[] = [];
      const proto = Object.getPrototypeOf(instance);
      for (const name of this.scanner.getAllMethodNames(proto)) {
        const handler = proto[name] as Type;
        const methodPaths = Reflect.getMetadata(PATH_METADATA, handler) as
          string | string[] | undefined;
        if (methodPaths === undefined) continue;
        const methodEnum = Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod;
        const method = RequestMethod[methodEnum] ?? 'GET';
        // A decorator written above `@Balanced()` that replaced the method without copying its
        // metadata: `@Balanced()` recorded its options where the class is defined.
        const methodBalanced =
          this.reflector.get<BalancedOptions | undefined>(BALANCED_METADATA, handler) ??
          declaredBalanced(proto, name);
        const balanced = mergeBalancedOptions(classBalanced, methodBalanced);
        const guards = (Reflect.getMetadata(GUARDS_METADATA, handler) as unknown[]) ?? [];
        const decorated = [...classGuards, ...guards].includes(AdmissionGuard);
        const handlerVersion: unknown = Reflect.getMetadata(VERSION_METADATA, handler);
        const constrained =
          (host !== undefined && host !== null) ||
          (versioning !== undefined &&
            versioning.type !== VersioningType.URI &&
            (handlerVersion ?? controllerVersion ?? versioning.defaultVersion) !== undefined);
        const versions =
          versioning?.type === VersioningType.URI
            ? asArray<string | symbol>(
                Reflect.getMetadata(VERSION_METADATA, handler) ??
                  controllerVersion ??
                  versioning.defaultVersion,
              )
                .filter((v): v is string => typeof v === 'string')
                .map((v) => `${versioning.prefix === false ? '' : (versioning.prefix ?? 'v')}${v}`)
            : [];
        const served: string[] = [];
        for (const cp of controllerPaths.length ? controllerPaths : ['']) {
          for (const mp of asArray(methodPaths)) {
            for (const version of versions.length ? versions : ['']) {
              const rest = normalizePath([modulePath ?? '', version, cp, mp].join('/'));
              const unversioned = normalizePath([modulePath ?? '', cp, mp].join('/'));
              const excluded = excludedFromGlobalPrefix(this.config, unversioned, methodEnum);
              const path = normalizePath(`${excluded ? '' : prefix}/${rest}`);
              served.push(path);
              out.push({
                method,
                path,
                controller: metatype,
                name,
                balanced,
                decorated,
                constrained,
              });
            }
          }
        }
        const route = `${method} ${served.join(', ')}`;
        classRoutes.push(route);
        if (methodBalanced !== undefined && methodBalanced !== classBalanced) {
          const where = `@Balanced() on ${className}.${name} (${route})`;
          problems.push(...validateBalancedOptions(methodBalanced, where));
        }
      }
      if (classBalanced !== undefined) {
        const where = `@Balanced() on ${className} (${routeList(classRoutes)})`;
        problems.push(...validateBalancedOptions(classBalanced, where));
      }
    }
    return out;
  }

  /** `setGlobalPrefix(p, { exclude })`: Nest serves these routes without the prefix. */
  private log(level: 'log' | 'warn', message: string): void {
    if (this.options.logger) this.logger[level](message);
  }
}

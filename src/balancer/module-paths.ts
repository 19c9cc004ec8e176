import type { Type } from '@nestjs/common';
import { RouterModule, type ModulesContainer, type Routes } from '@nestjs/core';
import { normalizePath } from '../config/resolve-options';

/**
 * The token under which `RouterModule.register(routes)` provides its routes, read from the
 * public `register()` itself (Nest does not export the token).
 */
const ROUTES_TOKEN: unknown = (
  RouterModule.register([]).providers?.[0] as { provide?: unknown } | undefined
)?.provide;

/**
 * The path `RouterModule.register()` gives each module of this application, from the routes the
 * app registered (every `RouterModule` import of this container), joined the way Nest joins
 * them: a child's path after its parent's; a child given as a bare module takes its parent's.
 */
export function modulePaths(modules: ModulesContainer): Map<Type, string> {
  const out = new Map<Type, string>();
  if (ROUTES_TOKEN === undefined) return out;
  for (const mod of modules.values()) {
    if (mod.metatype !== RouterModule) continue;
    const routes = mod.providers.get(ROUTES_TOKEN as string)?.instance as Routes | undefined;
    if (Array.isArray(routes)) collect(routes, '', out);
  }
  return out;
}

function collect(routes: Routes, parent: string, out: Map<Type, string>): void {
  for (const route of routes) {
    if (typeof route === 'function') {
      out.set(route as Type, normalizePath(parent));
      continue;
    }
    const path = normalizePath(`${parent}/${route.path}`);
    if (route.module) out.set(route.module, path);
    if (route.children) collect(route.children as Routes, path, out);
  }
}

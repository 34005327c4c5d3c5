/**
 * Dependency order of a project's services: what `up` starts (the asked services and,
 * transitively, what they depend on) and the reverse order `down` stops in.
 * @module
 */
import { ValidationError } from '../errors.js';
import type { ComposeProject } from './model.js';

/** A service's dependencies: `depends_on` and `network_mode: service:<name>`. */
export function dependenciesOf(project: ComposeProject, name: string): string[] {
  const s = project.services[name]!;
  const deps = Object.keys(s.dependsOn).filter((d) => d in project.services);
  if (s.networkMode?.startsWith('service:')) deps.push(s.networkMode.slice(8));
  return [...new Set(deps)];
}

/**
 * The services to start for `asked` (default: the enabled ones) with everything they depend
 * on, dependencies first. A dependency with `required: false` is included only if enabled.
 * @throws ValidationError naming `services` for an unknown service.
 */
export function startOrder(project: ComposeProject, asked?: readonly string[]): string[] {
  for (const [i, name] of (asked ?? []).entries()) if (!(name in project.services)) throw new ValidationError(`services[${i}]`, `no service named ${JSON.stringify(name)} in project ${project.name}`);
  const out: string[] = [];
  const visit = (name: string): void => {
    if (out.includes(name)) return;
    const s = project.services[name]!;
    for (const dep of dependenciesOf(project, name)) {
      const optional = s.dependsOn[dep]?.required === false;
      if (!optional || project.enabled.includes(dep)) visit(dep);
    }
    out.push(name);
  };
  for (const name of asked ?? project.enabled) visit(name);
  return out;
}

/** Every service of the project, dependents before their dependencies (the order to stop). */
export function stopOrder(project: ComposeProject): string[] {
  return startOrder(project, Object.keys(project.services)).reverse();
}

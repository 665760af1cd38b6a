/**
 * Resource identity: the one place that turns the host and a container into OpenTelemetry
 * resource attributes (logs, spans and the metrics info all use it).
 *
 * Host: `host.name` is the operator's `host_name` if set, else a `host.name` given in
 * OTEL_RESOURCE_ATTRIBUTES, else the Docker daemon's `/info` Name (the host's name even when
 * the agent runs in a container, where `os.hostname()` is the container id), else the machine
 * hostname. `host.id` is the daemon's ID, `os.type` its OSType.
 *
 * Container: `service.name` is the compose service, else the swarm service, else the
 * container name; `service.namespace` the compose project or swarm stack;
 * `service.instance.id` the container id. Image name and tags come from the one image parser
 * (`image-ref.ts`). OTEL_RESOURCE_ATTRIBUTES is the base of every resource; what the agent
 * knows about the container itself wins over it.
 */
import os from 'node:os';
import type { ApiInfo } from './api-types.js';
import { imageNameAndTags } from './image-ref.js';
import type { ContainerInfo } from './types.js';

export type ResourceAttributeValue = string | string[];
export type ResourceAttributes = Record<string, ResourceAttributeValue>;

/** Labels the service identity is read from. */
export const SERVICE_LABELS = {
  composeService: 'com.docker.compose.service',
  composeProject: 'com.docker.compose.project',
  swarmService: 'com.docker.swarm.service.name',
  stackNamespace: 'com.docker.stack.namespace',
} as const;

/** `service.name` / `service.namespace` of a container from its labels, else its name. */
export function containerService(
  labels: Readonly<Record<string, string>>,
  containerName: string,
): { name: string; namespace?: string } {
  const nonEmpty = (k: string): string | undefined => {
    const v = labels[k]?.trim();
    return v ? v : undefined;
  };
  const name =
    nonEmpty(SERVICE_LABELS.composeService) ??
    nonEmpty(SERVICE_LABELS.swarmService) ??
    containerName;
  const namespace =
    nonEmpty(SERVICE_LABELS.composeProject) ?? nonEmpty(SERVICE_LABELS.stackNamespace);
  return namespace ? { name, namespace } : { name };
}

/** OpenTelemetry `os.type` of a daemon OSType / Node platform. */
function osType(raw: string | undefined): string {
  const v = (raw ?? process.platform).toLowerCase();
  if (v === 'win32') return 'windows';
  if (v === 'sunos') return 'solaris';
  return v;
}

export interface ResourceIdentityOptions {
  /** The operator's `host_name` override ('' or undefined: not set). */
  hostName?: string;
  /** The daemon's last `/info` answer, when known (the inventory's engine info). */
  daemonInfo: () => ApiInfo | undefined;
  /** Last resort for host.name (default `os.hostname()`). */
  fallbackHostName?: string;
  /** OTEL_RESOURCE_ATTRIBUTES, already decoded. */
  resourceAttributes?: Readonly<Record<string, string>>;
  /** OTEL_SERVICE_NAME: `service.name` of the agent's own telemetry ('' or undefined: not set). */
  serviceName?: string;
  /** The agent's version (`service.version` of its own telemetry). */
  version?: string;
}

export class ResourceIdentity {
  private readonly extra: Readonly<Record<string, string>>;
  constructor(private readonly o: ResourceIdentityOptions) {
    this.extra = o.resourceAttributes ?? {};
  }

  /** host.name as described in the module header. */
  hostName(): string {
    return (
      this.o.hostName?.trim() ||
      this.extra['host.name']?.trim() ||
      this.o.daemonInfo()?.Name?.trim() ||
      this.o.fallbackHostName ||
      os.hostname()
    );
  }

  /** `host.name`, `host.id` (when the daemon told its ID) and `os.type`. */
  host(): Record<string, string> {
    const info = this.o.daemonInfo();
    const out: Record<string, string> = { 'host.name': this.hostName() };
    const id = this.extra['host.id'] ?? info?.ID;
    if (id) out['host.id'] = id;
    out['os.type'] = this.extra['os.type'] ?? osType(info?.OSType);
    return out;
  }

  /** Resource of the agent's own telemetry (service.name from OTEL_SERVICE_NAME). */
  agent(): ResourceAttributes {
    return {
      ...this.extra,
      ...this.host(),
      'service.name':
        this.o.serviceName?.trim() || this.extra['service.name']?.trim() || 'harbormaster',
      'service.version': this.o.version ?? this.extra['service.version'] ?? '',
    };
  }

  /**
   * Resource of a container's telemetry (its logs and its runs as spans). `allow` lists the
   * container labels exported as `container.label.<key>`.
   */
  container(
    c: Pick<ContainerInfo, 'id' | 'name' | 'image' | 'imageId' | 'labels'>,
    allow: readonly string[] = [],
  ): ResourceAttributes {
    const img = imageNameAndTags(c.image);
    const svc = containerService(c.labels, c.name);
    const out: ResourceAttributes = { ...this.extra, ...this.host() };
    // the agent's own service.* never describes a container
    delete out['service.namespace'];
    delete out['service.version'];
    out['service.name'] = svc.name;
    if (svc.namespace) out['service.namespace'] = svc.namespace;
    out['service.instance.id'] = c.id;
    out['container.id'] = c.id;
    out['container.name'] = c.name;
    out['container.image.name'] = img.name;
    if (img.tags.length > 0) out['container.image.tags'] = img.tags;
    if (c.imageId) out['container.image.id'] = c.imageId;
    out['container.runtime.name'] = 'docker';
    for (const k of allow) {
      const v = c.labels[k];
      if (v !== undefined) out[`container.label.${k}`] = v;
    }
    return out;
  }
}

/** Everything long-running in the agent implements this (see DESIGN.md). */
export interface Component {
  readonly name: string;
  /** Resolves once the component has started; it keeps running until stop(). */
  start(signal: AbortSignal): Promise<void>;
  /** Idempotent; drains work in flight. */
  stop(): Promise<void>;
  health(): ComponentHealth;
}

export interface ComponentHealth {
  ok: boolean;
  detail?: string;
}

import type { ExecutionStatus } from '../api/client'

export type DisplayStatus = ExecutionStatus | 'idle' | 'submitting'

const STYLES: Record<DisplayStatus, string> = {
  idle: 'border-edge text-muted',
  submitting: 'border-cyan/60 text-cyan',
  queued: 'border-cyan/60 text-cyan',
  running: 'border-cyan text-cyan shadow-[0_0_12px_rgb(34_228_255/0.45)]',
  succeeded: 'border-lime text-lime shadow-[0_0_12px_rgb(182_255_59/0.35)]',
  failed: 'border-danger text-danger',
  error: 'border-danger text-danger',
  timed_out: 'border-amber text-amber',
  memory_exceeded: 'border-amber text-amber',
  cancelled: 'border-muted text-muted',
}

export function statusClasses(status: DisplayStatus): string {
  return STYLES[status]
}

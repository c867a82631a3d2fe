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

/** The status pill; its text is exactly the status value (`succeeded`, `timed_out`, ...). */
export function StatusBadge({ status, live = false }: { status: DisplayStatus; live?: boolean }) {
  const active = status === 'queued' || status === 'running' || status === 'submitting'
  return (
    <span className={`inline-flex items-center gap-2 rounded-full border px-3 py-0.5 font-mono text-sm ${statusClasses(status)}`}>
      <span aria-hidden="true" className={`h-2 w-2 rounded-full bg-current ${active ? 'animate-pulse' : ''}`} />
      {live ? (
        <span role="status" aria-label="Status" aria-live="polite" data-testid="status">
          {status}
        </span>
      ) : (
        <span>{status}</span>
      )}
    </span>
  )
}

import { statusClasses, type DisplayStatus } from './status'

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

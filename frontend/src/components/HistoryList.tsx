import type { ExecutionSummary } from '../api/client'
import type { ApiProblem } from '../api/errors'
import { firstLine, formatAgo, formatMs } from '../format'
import { sourceOf } from '../storage'
import { executionHref } from '../executionAddress'
import { statusClasses } from './status'

export interface HistoryListProps {
  items: ExecutionSummary[] | null
  loading: boolean
  problem: ApiProblem | null
  selectedId: string | null
  onOpen: (execution: ExecutionSummary) => void
  onRefresh: () => void
  /** Present when older executions follow (the list's next_cursor). */
  onLoadMore?: () => void
}

export function HistoryList({ items, loading, problem, selectedId, onOpen, onRefresh, onLoadMore }: HistoryListProps) {
  return (
    <nav aria-labelledby="history-heading" className="panel flex min-h-0 flex-col">
      <div className="flex items-center justify-between border-b border-edge px-4 py-2">
        <h2 id="history-heading" className="font-mono text-xs font-semibold tracking-widest text-magenta uppercase">
          Recent executions
        </h2>
        <button
          type="button"
          onClick={onRefresh}
          disabled={loading}
          className="rounded px-2 py-0.5 text-xs text-cyan hover:bg-cyan/10 disabled:text-muted"
        >
          Refresh
        </button>
      </div>
      <div className="min-h-0 flex-1 overflow-auto p-2" aria-busy={loading}>
        {problem && (
          <p role="alert" className="m-2 rounded border border-danger/60 p-2 text-sm text-danger">
            Couldn't load history. {problem.message}
          </p>
        )}
        {loading && !items && (
          <ul aria-label="Loading history" className="space-y-2 p-1">
            {[0, 1, 2].map((i) => (
              <li key={i} className="h-12 animate-pulse rounded bg-panel-2" />
            ))}
          </ul>
        )}
        {items && items.length === 0 && (
          <p className="p-3 text-sm text-muted">No executions yet. Write some Python and press Run.</p>
        )}
        {items && items.length > 0 && (
          <ul className="space-y-1">
            {items.map((item) => {
              const source = sourceOf(item)
              const selected = item.id === selectedId
              return (
                <li key={item.id}>
                  {/* Links, not buttons: each entry is an address (#/executions/<id>) that reopens the result. */}
                  <a
                    href={executionHref(item.id)}
                    onClick={(event) => {
                      event.preventDefault()
                      onOpen(item)
                    }}
                    aria-current={selected ? 'true' : undefined}
                    className={`block w-full rounded-md border px-3 py-2 text-left transition hover:border-cyan/60 hover:bg-cyan/5 ${
                      selected ? 'border-cyan/70 bg-cyan/10' : 'border-transparent'
                    }`}
                  >
                    <span className="flex items-center justify-between gap-2">
                      <span className={`font-mono text-xs ${statusClasses(item.status).split(' ').filter((c) => c.startsWith('text-')).join(' ')}`}>
                        {item.status}
                      </span>
                      <span className="text-xs text-muted">{formatAgo(item.created_at)}</span>
                    </span>
                    <span className="mt-0.5 block truncate font-mono text-sm text-ink">
                      {source ? firstLine(source.code) : item.id}
                    </span>
                    <span className="block text-xs text-muted">
                      {item.exit_code != null ? `exit ${item.exit_code} · ` : ''}
                      {formatMs(item.duration_ms)}
                    </span>
                  </a>
                </li>
              )
            })}
          </ul>
        )}
        {items && onLoadMore && (
          <button
            type="button"
            onClick={onLoadMore}
            disabled={loading}
            className="mt-2 w-full rounded px-2 py-1 text-xs text-cyan hover:bg-cyan/10 disabled:text-muted"
          >
            Load more
          </button>
        )}
      </div>
    </nav>
  )
}

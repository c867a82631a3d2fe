import { useId } from 'react'

export interface OutputPaneProps {
  name: 'stdout' | 'stderr'
  text: string
  truncated: boolean
  emptyHint: string
}

/**
 * One output stream. The region (named "stdout"/"stderr") holds only the program's output, so its text is
 * exactly what the program printed; the heading and the truncation notice sit outside it.
 */
export function OutputPane({ name, text, truncated, emptyHint }: OutputPaneProps) {
  const noticeId = useId()
  const tone = name === 'stderr' ? 'text-danger' : 'text-ink'
  return (
    <div className="flex min-h-0 flex-col">
      <div className="flex items-center justify-between gap-2 pb-1">
        <h3 className={`font-mono text-xs font-semibold tracking-widest uppercase ${name === 'stderr' ? 'text-magenta' : 'text-cyan'}`}>
          {name}
        </h3>
        {truncated && (
          <p id={noticeId} role="note" className="rounded border border-amber/70 px-2 py-0.5 text-xs text-amber">
            Output truncated: {name} hit the size cap, the rest was dropped.
          </p>
        )}
      </div>
      <section
        role="region"
        aria-label={name}
        aria-describedby={truncated ? noticeId : undefined}
        tabIndex={0}
        className="max-h-72 min-h-24 overflow-auto rounded-md border border-edge bg-void/90 p-3"
      >
        <pre className={`output font-mono text-sm leading-6 whitespace-pre-wrap break-words ${tone}`} data-empty={emptyHint}>{text}</pre>
      </section>
    </div>
  )
}

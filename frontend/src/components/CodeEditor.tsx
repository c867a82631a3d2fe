import { useId, useMemo, useRef, type KeyboardEvent } from 'react'
import { highlightPython } from '../highlight'

const INDENT = '    '

export interface CodeEditorProps {
  value: string
  onChange: (value: string) => void
  invalid?: boolean
  describedBy?: string
}

/** Replaces [start, end) of the textarea's value and keeps the edit on the undo stack where supported. */
function replaceRange(el: HTMLTextAreaElement, start: number, end: number, text: string, selStart: number, selEnd: number) {
  el.focus()
  el.setSelectionRange(start, end)
  // execCommand keeps native undo/redo working; jsdom and some browsers lack it, hence the fallback.
  const done = typeof document.execCommand === 'function' && document.execCommand('insertText', false, text)
  if (!done) el.setRangeText(text, start, end, 'end')
  el.setSelectionRange(selStart, selEnd)
}

/**
 * A small Python editor: a transparent <textarea> (the real, accessible input named "Code") laid over a
 * Prism-highlighted <pre> with identical metrics, plus a line-number gutter.
 * Tab indents (the selection's lines, or inserts four spaces), Shift+Tab dedents; Escape then Tab leaves
 * the editor, so keyboard users are never trapped.
 */
export function CodeEditor({ value, onChange, invalid, describedBy }: CodeEditorProps) {
  const ref = useRef<HTMLTextAreaElement>(null)
  const tabEscapes = useRef(false)
  const helpId = useId()
  const lineCount = useMemo(() => value.split('\n').length, [value])
  // A trailing newline needs a visible line in the <pre>, or the two layers drift apart.
  const html = useMemo(() => highlightPython(value) + (value.endsWith('\n') || value === '' ? ' ' : ''), [value])

  function onKeyDown(event: KeyboardEvent<HTMLTextAreaElement>) {
    const el = event.currentTarget
    if (event.key === 'Escape') {
      tabEscapes.current = true
      return
    }
    if (event.key !== 'Tab' || event.ctrlKey || event.metaKey || event.altKey) {
      tabEscapes.current = false
      return
    }
    if (tabEscapes.current) return // let focus move on
    event.preventDefault()
    const { selectionStart: start, selectionEnd: end } = el
    const text = el.value
    const lineStart = text.lastIndexOf('\n', start - 1) + 1
    if (!event.shiftKey && start === end) {
      const column = start - lineStart
      const pad = INDENT.slice(column % INDENT.length) || INDENT
      replaceRange(el, start, end, pad, start + pad.length, start + pad.length)
    } else {
      const blockEnd = end > start && text[end - 1] === '\n' ? end - 1 : end
      const block = text.slice(lineStart, blockEnd)
      const lines = block.split('\n')
      const changed = event.shiftKey
        ? lines.map((line) => line.replace(/^( {1,4}|\t)/, ''))
        : lines.map((line) => INDENT + line)
      const replacement = changed.join('\n')
      const firstDelta = changed[0]!.length - lines[0]!.length
      const newStart = Math.max(lineStart, start + firstDelta)
      const newEnd = start === end ? newStart : blockEnd + (replacement.length - block.length)
      replaceRange(el, lineStart, blockEnd, replacement, newStart, newEnd)
    }
    onChange(el.value)
  }

  return (
    <div className="relative flex max-h-[28rem] min-h-[16rem] overflow-auto rounded-b-lg bg-void/80 focus-within:ring-1 focus-within:ring-cyan/70">
      <div
        aria-hidden="true"
        className="code-layer sticky left-0 z-10 shrink-0 select-none border-r border-edge bg-panel text-right text-muted"
        style={{ paddingRight: '0.75rem', minWidth: '3rem' }}
        data-testid="line-numbers"
      >
        {Array.from({ length: lineCount }, (_, i) => (
          <div key={i}>{i + 1}</div>
        ))}
      </div>
      <div className="relative flex-[1_0_auto]">
        <pre aria-hidden="true" className="code-layer pointer-events-none min-h-full text-ink">
          <code dangerouslySetInnerHTML={{ __html: html }} />
        </pre>
        <textarea
          ref={ref}
          aria-label="Code"
          aria-describedby={[helpId, describedBy].filter(Boolean).join(' ')}
          aria-invalid={invalid || undefined}
          aria-keyshortcuts="Control+Enter Meta+Enter"
          className="code-layer absolute inset-0 h-full w-full resize-none overflow-hidden bg-transparent text-transparent caret-cyan outline-none selection:bg-cyan/30 selection:text-transparent focus-visible:outline-none"
          value={value}
          onChange={(e) => onChange(e.target.value)}
          onKeyDown={onKeyDown}
          spellCheck={false}
          autoCapitalize="off"
          autoComplete="off"
          autoCorrect="off"
          wrap="off"
          cols={1}
          rows={1}
        />
        <p id={helpId} className="sr-only">
          Python editor. Tab indents, Shift+Tab dedents; press Escape then Tab to leave the editor. Control+Enter runs the code.
        </p>
      </div>
    </div>
  )
}

import { useCallback, useEffect, useId, useMemo, useRef, useState, type FormEvent } from 'react'
import {
  createApiClient,
  isTerminal,
  type ApiClient,
  type Execution,
  type ExecutionCreate,
  type ExecutionSummary,
  type Runtime,
  type RuntimeName,
} from './api/client'
import { describeError, fieldLabel, isFileField, type ApiProblem } from './api/errors'
import { ArtifactsPanel } from './components/ArtifactsPanel'
import { CodeEditor } from './components/CodeEditor'
import { FileInputs } from './components/FileInputs'
import { HistoryList } from './components/HistoryList'
import { OutputPane } from './components/OutputPane'
import type { DisplayStatus } from './components/status'
import { RuntimeSelect } from './components/RuntimeSelect'
import { StatusBadge } from './components/StatusBadge'
import { executionHref, executionIdFromHash } from './executionAddress'
import { formatMs } from './format'
import { pickedFromInput, readPickedFile, withPicked, type PickedFile } from './inputFiles'
import { loadApiKey, rememberSource, saveApiKey, sourceOf } from './storage'
import { useExecution } from './useExecution'
import { useLatest } from './useLatest'

export const SAMPLE_CODE = `# Code goes in. Only output comes out.
import sys

name = sys.stdin.readline().strip() or "world"
print(f"Hello, {name}!")

for i in range(3):
    print("tick", i)
`

const DEFAULT_TIMEOUT = 5
const DEFAULT_RUNTIME = 'python'
const HISTORY_PAGE = 20

export interface AppProps {
  /** Injected in tests; the page builds its own from the stored API key. */
  client?: ApiClient
  retryMs?: number
}

function ProblemAlert({ problem, onDismiss, onFixKey }: { problem: ApiProblem; onDismiss: () => void; onFixKey: () => void }) {
  return (
    <div role="alert" className="flex items-start gap-3 rounded-md border border-danger/70 bg-danger/10 p-3 text-sm">
      <div className="flex-1">
        <p className="font-semibold text-danger">
          {problem.title}
          {problem.status ? <span className="font-mono text-xs font-normal"> (HTTP {problem.status})</span> : null}
        </p>
        <p className="text-ink">{problem.message}</p>
      </div>
      {problem.kind === 'unauthorized' && (
        <button type="button" onClick={onFixKey} className="rounded border border-cyan/70 px-2 py-0.5 text-xs text-cyan hover:bg-cyan/10">
          Enter API key
        </button>
      )}
      <button type="button" onClick={onDismiss} aria-label="Dismiss message" className="px-1 text-muted hover:text-ink">
        ✕
      </button>
    </div>
  )
}

export default function App({ client: injected, retryMs }: AppProps) {
  const [apiKey, setApiKey] = useState(loadApiKey)
  const apiKeyRef = useLatest(apiKey)
  // eslint-disable-next-line react-hooks/refs -- the client calls the getter from its request interceptor, never during render
  const client = useMemo(() => injected ?? createApiClient(() => apiKeyRef.current), [injected, apiKeyRef])

  const [code, setCode] = useState(SAMPLE_CODE)
  const [stdin, setStdin] = useState('')
  const [timeoutSeconds, setTimeoutSeconds] = useState(String(DEFAULT_TIMEOUT))
  // Empty: the runtime's default memory (python-data needs more than the standard library does).
  const [memoryMb, setMemoryMb] = useState('')
  const [runtimes, setRuntimes] = useState<Runtime[]>([])
  const [runtimesProblem, setRuntimesProblem] = useState<ApiProblem | null>(null)
  // The API key the runtimes were last asked for with.
  const runtimesAskedWith = useRef<string | null>(null)
  const [runtime, setRuntime] = useState(DEFAULT_RUNTIME)
  // Once a person picks a runtime (or reopens an execution), the list arriving late does not override it.
  const runtimeChosen = useRef(false)
  const [files, setFiles] = useState<PickedFile[]>([])
  const [readingFiles, setReadingFiles] = useState(0)
  const [filesReadProblem, setFilesReadProblem] = useState<string | null>(null)

  const [history, setHistory] = useState<ExecutionSummary[] | null>(null)
  const [historyLoading, setHistoryLoading] = useState(true) // the first load starts on mount
  const [historyProblem, setHistoryProblem] = useState<ApiProblem | null>(null)
  const [historyCursor, setHistoryCursor] = useState<string | null>(null)

  const keyInput = useRef<HTMLInputElement>(null)
  const problemId = useId()

  // State is set only in the promise's callbacks, so the first load can start from an effect.
  const loadHistory = useCallback(
    () =>
      client.listExecutions(HISTORY_PAGE).then(
        (page) => {
          setHistory(page.items)
          setHistoryCursor(page.next_cursor ?? null)
          setHistoryProblem(null)
          setHistoryLoading(false)
        },
        (error: unknown) => {
          setHistoryProblem(describeError(error))
          setHistoryLoading(false)
        },
      ),
    [client],
  )
  const refreshHistory = useCallback(() => {
    setHistoryLoading(true)
    return loadHistory()
  }, [loadHistory])

  const loadMoreHistory = useCallback(() => {
    if (!historyCursor) return
    setHistoryLoading(true)
    client.listExecutions(HISTORY_PAGE, historyCursor).then(
      (page) => {
        // A run since the first page shifts the list: an entry may come twice.
        setHistory((shown) => {
          const have = new Set((shown ?? []).map((item) => item.id))
          return [...(shown ?? []), ...page.items.filter((item) => !have.has(item.id))]
        })
        setHistoryCursor(page.next_cursor ?? null)
        setHistoryProblem(null)
        setHistoryLoading(false)
      },
      (error: unknown) => {
        setHistoryProblem(describeError(error))
        setHistoryLoading(false)
      },
    )
  }, [client, historyCursor])

  const onFinished = useCallback(() => void refreshHistory(), [refreshHistory])
  const exec = useExecution(client, { retryMs, onFinished })
  const { execution, phase, problem } = exec
  const active = phase !== 'idle'
  const fileProblem = problem && isFileField(problem.field) ? problem : null

  const status: DisplayStatus = phase === 'submitting' ? 'submitting' : (execution?.status ?? 'idle')
  const badField = problem?.field

  const run = useCallback(async () => {
    if (active || readingFiles) return
    const body: ExecutionCreate = {
      code,
      stdin,
      // The server names an unknown runtime in a 422, like any other field.
      runtime: runtime as RuntimeName,
      // No memory_mb: the server gives the runtime's default. (openapi-typescript marks fields with defaults required.)
      limits: {
        timeout_seconds: Number(timeoutSeconds),
        ...(memoryMb.trim() ? { memory_mb: Number(memoryMb) } : {}),
      } as ExecutionCreate['limits'],
    }
    if (files.length) body.files = files.map(({ path, content_base64 }) => ({ path, content_base64 }))
    const created = await exec.run(body)
    if (created) {
      rememberSource(created.id, { code, stdin })
      window.history.replaceState(null, '', executionHref(created.id))
      void refreshHistory()
    }
  }, [active, readingFiles, code, stdin, runtime, files, timeoutSeconds, memoryMb, exec, refreshHistory])

  // A problem the server found with the files names one by its index: once the files change, it is stale.
  const dismissFileProblem = fileProblem ? exec.dismissProblem : undefined
  const pickFiles = useCallback(
    (picked: File[]) => {
      setReadingFiles((n) => n + 1)
      Promise.all(picked.map(readPickedFile)).then(
        (read) => {
          setFiles((current) => withPicked(current, read))
          setFilesReadProblem(null)
          setReadingFiles((n) => n - 1)
          dismissFileProblem?.()
        },
        (error: unknown) => {
          setFilesReadProblem(error instanceof Error ? error.message : String(error))
          setReadingFiles((n) => n - 1)
        },
      )
    },
    [dismissFileProblem],
  )
  const removeFile = useCallback(
    (path: string) => {
      setFiles((current) => current.filter((file) => file.path !== path))
      dismissFileProblem?.()
    },
    [dismissFileProblem],
  )
  const chooseRuntime = useCallback((name: string) => {
    runtimeChosen.current = true
    setRuntime(name)
  }, [])

  const openExecution = useCallback(
    (doc: Execution) => {
      exec.open(doc)
      const source = sourceOf(doc)
      if (source) {
        setCode(source.code)
        setStdin(source.stdin)
      }
      setTimeoutSeconds(String(doc.limits.timeout_seconds ?? DEFAULT_TIMEOUT))
      setMemoryMb(doc.limits.memory_mb != null ? String(doc.limits.memory_mb) : '')
      runtimeChosen.current = true
      setRuntime(doc.runtime)
      setFiles((doc.files ?? []).map(pickedFromInput))
      window.history.replaceState(null, '', executionHref(doc.id))
    },
    [exec],
  )

  // The list holds summaries; opening one reads the whole document (output included).
  const openFromHistory = useCallback(
    (item: ExecutionSummary) => {
      client.getExecution(item.id).then(openExecution, (error: unknown) => setHistoryProblem(describeError(error)))
    },
    [client, openExecution],
  )

  // First load: history, and the execution named in the address (#/executions/<id>), if any.
  // Runs once per client; openExecution is read through a ref so that it is deliberately not a dependency.
  const openExecutionRef = useLatest(openExecution)
  const loadRuntimes = useCallback(() => {
    runtimesAskedWith.current = apiKeyRef.current
    return client.listRuntimes().then(
      (offered) => {
        setRuntimes(offered)
        setRuntimesProblem(null)
        const preferred = offered.find((r) => r.default) ?? offered.find((r) => r.name === DEFAULT_RUNTIME) ?? offered[0]
        if (preferred && !runtimeChosen.current) setRuntime(preferred.name)
      },
      (error: unknown) => setRuntimesProblem(describeError(error)),
    )
  }, [client, apiKeyRef])

  // A key entered after the list was refused: ask again once typing pauses.
  const runtimesRefused = runtimesProblem?.kind === 'unauthorized'
  useEffect(() => {
    if (!runtimesRefused || apiKey === runtimesAskedWith.current) return
    const timer = setTimeout(() => void loadRuntimes(), 400)
    return () => clearTimeout(timer)
  }, [apiKey, runtimesRefused, loadRuntimes])

  useEffect(() => {
    void loadHistory()
    void loadRuntimes()
    const id = executionIdFromHash(window.location.hash)
    if (id) {
      client.getExecution(id).then(
        (doc) => openExecutionRef.current(doc),
        () => window.history.replaceState(null, '', '#'),
      )
    }
  }, [client, loadHistory, loadRuntimes, openExecutionRef])

  // Ctrl/Cmd+Enter runs from anywhere on the page.
  const runRef = useLatest(run)
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
        event.preventDefault()
        void runRef.current()
      }
    }
    window.addEventListener('keydown', onKey)
    return () => window.removeEventListener('keydown', onKey)
  }, [runRef])

  function onApiKeyChange(value: string) {
    setApiKey(value)
    saveApiKey(value)
  }

  function onSubmit(event: FormEvent) {
    event.preventDefault()
    void run()
  }

  const invalid = (field: string) => (badField === field || badField?.startsWith(`${field}.`) ? true : undefined)
  const describedBy = (field: string) => (invalid(field) ? problemId : undefined)

  return (
    <div className="mx-auto flex min-h-screen max-w-[110rem] flex-col gap-4 px-4 py-4 lg:px-6">
      <header className="flex flex-wrap items-center justify-between gap-4">
        <div>
          <h1 className="neon-title font-mono text-2xl font-bold tracking-[0.2em] text-cyan sm:text-3xl">
            THE_<span className="text-magenta">EXECUTIONER</span>
          </h1>
          <p className="font-mono text-sm text-muted">
            Untrusted Python in a disposable sandbox. <span className="text-lime">Code goes in; only output comes out.</span>
          </p>
        </div>
        <div className="flex items-center gap-2">
          <label htmlFor="api-key" className="font-mono text-xs text-muted">
            API key <span className="text-muted">(optional)</span>
          </label>
          <input
            id="api-key"
            ref={keyInput}
            type="password"
            autoComplete="off"
            spellCheck={false}
            placeholder="none"
            value={apiKey}
            onChange={(e) => onApiKeyChange(e.target.value)}
            aria-invalid={problem?.kind === 'unauthorized' || undefined}
            className="field w-48"
          />
          {apiKey && (
            <button type="button" onClick={() => onApiKeyChange('')} className="rounded px-2 py-1 text-xs text-cyan hover:bg-cyan/10">
              Clear key
            </button>
          )}
        </div>
      </header>

      <main className="grid flex-1 grid-cols-1 gap-4 lg:grid-cols-2 xl:grid-cols-[18rem_minmax(0,1fr)_minmax(0,1fr)]">
        <div className="order-3 lg:col-span-2 xl:order-1 xl:col-span-1">
          <HistoryList
            items={history && execution ? history.map((item) => (item.id === execution.id ? execution : item)) : history}
            loading={historyLoading}
            problem={historyProblem}
            selectedId={execution?.id ?? null}
            onOpen={openFromHistory}
            onRefresh={() => void refreshHistory()}
            onLoadMore={historyCursor ? loadMoreHistory : undefined}
          />
        </div>

        <form onSubmit={onSubmit} noValidate aria-label="Execution" className="order-1 flex min-w-0 flex-col gap-4 xl:order-2">
          <div className="panel overflow-hidden">
            <div className="flex items-center justify-between border-b border-edge px-4 py-2">
              <span className="font-mono text-xs tracking-widest text-cyan">main.py</span>
              <span className="hidden font-mono text-xs text-muted sm:inline">Python 3 · Tab indents · Ctrl/⌘+Enter runs</span>
            </div>
            <CodeEditor value={code} onChange={setCode} invalid={invalid('code')} describedBy={describedBy('code')} />
          </div>

          <div className="panel p-4">
            <label htmlFor="stdin" className="mb-1 block font-mono text-xs tracking-widest text-magenta uppercase">
              stdin
            </label>
            <textarea
              id="stdin"
              value={stdin}
              onChange={(e) => setStdin(e.target.value)}
              rows={3}
              placeholder="Input for the program (optional)"
              spellCheck={false}
              aria-invalid={invalid('stdin')}
              aria-describedby={describedBy('stdin')}
              className="field w-full resize-y"
            />
            <div className="mt-3 flex flex-wrap items-start gap-4">
              <RuntimeSelect
                runtimes={runtimes}
                value={runtime}
                onChange={chooseRuntime}
                problem={runtimesProblem?.message ?? null}
                onRetry={() => void loadRuntimes()}
                invalid={invalid('runtime')}
                describedBy={describedBy('runtime')}
              />
              <div>
                <label htmlFor="timeout" className="mb-1 block font-mono text-xs text-muted">
                  Timeout (s)
                </label>
                <input
                  id="timeout"
                  type="number"
                  inputMode="decimal"
                  min={0.1}
                  step="any"
                  value={timeoutSeconds}
                  onChange={(e) => setTimeoutSeconds(e.target.value)}
                  aria-invalid={invalid('limits.timeout_seconds')}
                  aria-describedby={describedBy('limits.timeout_seconds')}
                  className="field w-24"
                />
              </div>
              <div>
                <label htmlFor="memory" className="mb-1 block font-mono text-xs text-muted">
                  Memory (MB)
                </label>
                <input
                  id="memory"
                  type="number"
                  inputMode="numeric"
                  min={1}
                  step={1}
                  placeholder="default"
                  value={memoryMb}
                  onChange={(e) => setMemoryMb(e.target.value)}
                  aria-invalid={invalid('limits.memory_mb')}
                  aria-describedby={describedBy('limits.memory_mb')}
                  className="field w-24"
                />
              </div>
            </div>
            <div className="mt-3">
              <FileInputs
                files={files}
                onPick={pickFiles}
                onRemove={removeFile}
                invalidIndex={fileProblem?.fileIndex}
                describedBy={fileProblem ? problemId : undefined}
                problem={
                  fileProblem ? (
                    <div id={problemId}>
                      <ProblemAlert problem={fileProblem} onDismiss={exec.dismissProblem} onFixKey={() => keyInput.current?.focus()} />
                    </div>
                  ) : filesReadProblem ? (
                    <p role="alert" className="text-sm text-danger">
                      Cannot read the file: {filesReadProblem}
                    </p>
                  ) : null
                }
              />
            </div>
            <div className="mt-3 flex items-center justify-end gap-2">
              {execution && !isTerminal(execution.status) && (
                <button
                  type="button"
                  onClick={() => void exec.cancel()}
                  disabled={exec.cancelling}
                  className="rounded-md border border-magenta px-4 py-2 font-mono text-sm font-semibold text-magenta hover:bg-magenta/10 disabled:opacity-60"
                >
                  {exec.cancelling ? 'Cancelling…' : 'Cancel'}
                </button>
              )}
              <button
                type="submit"
                aria-label="Run"
                aria-keyshortcuts="Control+Enter Meta+Enter"
                disabled={active || readingFiles > 0}
                aria-busy={active || undefined}
                className="rounded-md bg-lime px-6 py-2 font-mono text-sm font-bold tracking-widest text-void uppercase shadow-[0_0_18px_rgb(182_255_59/0.45)] transition-[filter] hover:brightness-110 disabled:cursor-wait disabled:bg-lime/50 disabled:shadow-none"
              >
                {active && <span aria-hidden="true" className="mr-2 inline-block h-3 w-3 animate-spin rounded-full border-2 border-void border-t-transparent align-[-1px]" />}
                Run
              </button>
            </div>
          </div>
        </form>

        <section aria-labelledby="result-heading" className="panel order-2 flex min-w-0 flex-col gap-3 self-start p-4 xl:order-3">
          <h2 id="result-heading" className="sr-only">
            Result
          </h2>
          <div className="flex flex-wrap items-center gap-2 font-mono text-sm">
            <StatusBadge status={status} live />
            {execution?.exit_code != null && (
              <span className={`rounded-full border px-3 py-0.5 ${execution.exit_code === 0 ? 'border-lime/60 text-lime' : 'border-danger/70 text-danger'}`}>
                exit <span data-testid="exit-code">{execution.exit_code}</span>
              </span>
            )}
            {exec.elapsedMs !== null && (
              <span className="rounded-full border border-edge px-3 py-0.5 text-ink" aria-label={active ? 'Elapsed time' : 'Duration'}>
                {active ? 'elapsed' : 'duration'} <span data-testid="elapsed">{formatMs(exec.elapsedMs)}</span>
              </span>
            )}
            {execution && (
              <span className="rounded-full border border-edge px-3 py-0.5 text-muted" title={`Execution ${execution.id}`}>
                {execution.backend} · {execution.runtime} · {execution.limits.timeout_seconds ?? DEFAULT_TIMEOUT}s
                {execution.limits.memory_mb != null && ` · ${execution.limits.memory_mb}MB`}
              </span>
            )}
          </div>

          {problem && !fileProblem && (
            <div id={problemId}>
              <ProblemAlert problem={problem} onDismiss={exec.dismissProblem} onFixKey={() => keyInput.current?.focus()} />
            </div>
          )}
          {problem?.field && (
            <p className="sr-only">Check the {fieldLabel(problem.field)} field.</p>
          )}

          {execution?.error && (
            <p className="rounded-md border border-amber/60 bg-amber/10 p-2 text-sm text-amber">
              <span className="font-semibold">Reason:</span> {execution.error}
            </p>
          )}

          {phase === 'submitting' && <p className="font-mono text-sm text-cyan">Submitting…</p>}
          {!execution && phase === 'idle' && !problem && (
            <p className="font-mono text-sm text-muted">Nothing run yet. Press Run (or Ctrl/⌘+Enter) to execute the code in a sandbox.</p>
          )}

          <OutputPane
            name="stdout"
            text={execution?.stdout ?? ''}
            truncated={execution?.stdout_truncated ?? false}
            emptyHint={execution && isTerminal(execution.status) ? '(no output)' : execution ? 'waiting for output…' : ''}
          />
          <OutputPane
            name="stderr"
            text={execution?.stderr ?? ''}
            truncated={execution?.stderr_truncated ?? false}
            emptyHint={execution && isTerminal(execution.status) ? '(empty)' : ''}
          />
          {execution && ((execution.artifacts?.length ?? 0) > 0 || execution.artifacts_truncated) && (
            <ArtifactsPanel
              client={client}
              executionId={execution.id}
              artifacts={execution.artifacts ?? []}
              truncated={execution.artifacts_truncated ?? false}
            />
          )}
        </section>
      </main>

      <footer className="pb-2 text-center font-mono text-xs text-muted">
        Each run: fresh sandbox, no network, capped memory, time and output. <a className="text-cyan underline" href="/docs">API docs</a>
      </footer>
    </div>
  )
}

// The execution lifecycle on the page: submit, follow its event stream live (status, output, elapsed time) until the
// result, cancel, reopen. No polling: the stream says when anything changes.
import { useCallback, useEffect, useRef, useState } from 'react'
import { isTerminal, type ApiClient, type Execution, type ExecutionCreate, type ExecutionEvent } from './api/client'
import { describeError, type ApiProblem } from './api/errors'
import { useLatest } from './useLatest'

export type Phase = 'idle' | 'submitting' | 'watching'

export interface ExecutionState {
  execution: Execution | null
  phase: Phase
  cancelling: boolean
  /** The last request failure; cleared by the next successful request. */
  problem: ApiProblem | null
  /** Milliseconds since the run was submitted (or created, for a reopened one), ticking while active. */
  elapsedMs: number | null
  run: (body: ExecutionCreate) => Promise<Execution | null>
  cancel: () => Promise<void>
  open: (execution: Execution) => void
  dismissProblem: () => void
}

const MAX_BACKOFF_MS = 5_000
const RETRY_MS = 500

/** The document as it stands after one event of its stream. */
export function applyEvent(current: Execution, event: ExecutionEvent): Execution {
  switch (event.event) {
    case 'result':
      return event.execution
    case 'status':
      return { ...current, status: event.status }
    default: {
      // Offsets make a piece that was already applied (a resumed stream) harmless.
      const text = current[event.event]
      const have = new TextEncoder().encode(text).length
      if (event.offset < have) return current
      return {
        ...current,
        [event.event]: text + event.data,
        [`${event.event}_truncated`]: current[`${event.event}_truncated`] || event.truncated,
      }
    }
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export function useExecution(
  client: ApiClient,
  { retryMs = RETRY_MS, onFinished }: { retryMs?: number; onFinished?: (execution: Execution) => void } = {},
): ExecutionState {
  const [execution, setExecution] = useState<Execution | null>(null)
  const [phase, setPhase] = useState<Phase>('idle')
  const [problem, setProblem] = useState<ApiProblem | null>(null)
  const [cancelling, setCancelling] = useState(false)
  const [startedAt, setStartedAt] = useState<number | null>(null)
  const [now, setNow] = useState(() => Date.now())
  // Each submit/open gets a token; a loop whose token is stale stops quietly.
  const token = useRef(0)
  const onFinishedRef = useLatest(onFinished)

  // The open event stream, closed as soon as its run is no longer the page's (each holds one of the key's slots).
  const stream = useRef<AbortController | null>(null)
  const nextToken = useCallback(() => {
    stream.current?.abort()
    stream.current = null
    return ++token.current
  }, [])

  useEffect(() => () => void nextToken(), [nextToken])

  useEffect(() => {
    if (phase === 'idle') return
    const timer = setInterval(() => setNow(Date.now()), 100)
    return () => clearInterval(timer)
  }, [phase])

  const watch = useCallback(
    async (first: Execution, mine: number) => {
      if (isTerminal(first.status)) {
        setNow(Date.now())
        setPhase('idle')
        onFinishedRef.current?.(first)
        return
      }
      // The stream starts from the beginning: the output so far comes again, in full.
      let current: Execution = { ...first, stdout: '', stderr: '' }
      let lastEventId: string | null = null
      let failures = 0
      const controller = new AbortController()
      stream.current = controller
      const stale = () => token.current !== mine
      for (;;) {
        if (stale()) return controller.abort()
        try {
          await client.followExecution(
            first.id,
            (event) => {
              if (stale()) return controller.abort()
              lastEventId = event.id || lastEventId
              current = applyEvent(current, event)
              failures = 0
              setProblem(null)
              setExecution(current)
            },
            { lastEventId, signal: controller.signal },
          )
          break // the result came: the stream is over
        } catch (error) {
          if (stale()) return
          const found = describeError(error)
          if (!found.retryable) {
            setProblem(found)
            setPhase('idle')
            return
          }
          failures += 1 // connection lost, 429 or 5xx: resume after the last event, slower each time
          setProblem(found)
          await sleep(Math.min(retryMs * 2 ** (failures - 1), MAX_BACKOFF_MS))
        }
      }
      if (stale()) return
      setNow(Date.now())
      setPhase('idle')
      onFinishedRef.current?.(current)
    },
    [client, retryMs, onFinishedRef],
  )

  const run = useCallback(
    async (body: ExecutionCreate) => {
      const mine = nextToken()
      setPhase('submitting')
      setProblem(null)
      setExecution(null)
      const t0 = Date.now()
      setStartedAt(t0)
      setNow(t0)
      try {
        const created = await client.createExecution(body)
        if (token.current !== mine) return created
        setExecution(created)
        setPhase('watching')
        void watch(created, mine)
        return created
      } catch (error) {
        if (token.current === mine) {
          setProblem(describeError(error))
          setPhase('idle')
          setStartedAt(null)
        }
        return null
      }
    },
    [client, watch, nextToken],
  )

  const cancel = useCallback(async () => {
    const target = execution
    if (!target || isTerminal(target.status)) return
    const mine = token.current
    setCancelling(true)
    try {
      const cancelled = await client.cancelExecution(target.id)
      if (token.current !== mine) return
      if (!isTerminal(cancelled.status)) {
        setExecution(cancelled) // cancellation still in progress: the poll loop carries on
        return
      }
      nextToken() // stop following; we already hold the final document
      setExecution(cancelled)
      setProblem(null)
      setNow(Date.now())
      setPhase('idle')
      onFinishedRef.current?.(cancelled)
    } catch (error) {
      const found = describeError(error)
      if (found.kind === 'conflict') return // it finished first: the poll loop will show the result
      setProblem(found)
    } finally {
      setCancelling(false)
    }
  }, [client, execution, onFinishedRef, nextToken])

  const open = useCallback(
    (doc: Execution) => {
      const mine = nextToken()
      setProblem(null)
      setExecution(doc)
      const created = Date.parse(doc.created_at)
      setStartedAt(Number.isNaN(created) ? Date.now() : created)
      setNow(Date.now())
      if (isTerminal(doc.status)) {
        setPhase('idle')
      } else {
        setPhase('watching')
        void watch(doc, mine)
      }
    },
    [watch, nextToken],
  )

  const active = phase !== 'idle'
  const elapsedMs = startedAt === null ? null : active ? Math.max(0, now - startedAt) : (execution?.duration_ms ?? Math.max(0, now - startedAt))

  return { execution, phase, cancelling, problem, elapsedMs, run, cancel, open, dismissProblem: () => setProblem(null) }
}

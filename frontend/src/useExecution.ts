// The execution lifecycle on the page: submit, poll until terminal (with elapsed time), cancel, reopen.
import { useCallback, useEffect, useRef, useState } from 'react'
import { isTerminal, type ApiClient, type Execution, type ExecutionCreate } from './api/client'
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

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export function useExecution(
  client: ApiClient,
  { pollIntervalMs = 300, onFinished }: { pollIntervalMs?: number; onFinished?: (execution: Execution) => void } = {},
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

  useEffect(() => () => void (token.current += 1), [])

  useEffect(() => {
    if (phase === 'idle') return
    const timer = setInterval(() => setNow(Date.now()), 100)
    return () => clearInterval(timer)
  }, [phase])

  const watch = useCallback(
    async (first: Execution, mine: number) => {
      let current = first
      let failures = 0
      while (!isTerminal(current.status)) {
        await sleep(failures === 0 ? pollIntervalMs : Math.min(pollIntervalMs * 2 ** failures, MAX_BACKOFF_MS))
        if (token.current !== mine) return
        try {
          current = await client.getExecution(current.id)
          if (token.current !== mine) return
          failures = 0
          setProblem(null)
          setExecution(current)
        } catch (error) {
          if (token.current !== mine) return
          const found = describeError(error)
          setProblem(found)
          if (!found.retryable) {
            setPhase('idle')
            return
          }
          failures += 1 // connection lost, 429 or 5xx: keep trying, slower
        }
      }
      setNow(Date.now())
      setPhase('idle')
      onFinishedRef.current?.(current)
    },
    [client, pollIntervalMs, onFinishedRef],
  )

  const run = useCallback(
    async (body: ExecutionCreate) => {
      const mine = ++token.current
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
    [client, watch],
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
      token.current += 1 // stop the poll loop; we already hold the final document
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
  }, [client, execution, onFinishedRef])

  const open = useCallback(
    (doc: Execution) => {
      const mine = ++token.current
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
    [watch],
  )

  const active = phase !== 'idle'
  const elapsedMs = startedAt === null ? null : active ? Math.max(0, now - startedAt) : (execution?.duration_ms ?? Math.max(0, now - startedAt))

  return { execution, phase, cancelling, problem, elapsedMs, run, cancel, open, dismissProblem: () => setProblem(null) }
}

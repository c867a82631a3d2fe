import { AxiosError, AxiosHeaders, type InternalAxiosRequestConfig } from 'axios'
import { vi } from 'vitest'
import { isTerminal, type ApiClient, type Execution, type Runtime } from '../api/client'

export function doc(overrides: Partial<Execution> = {}): Execution {
  return {
    id: 'exec-1',
    status: 'queued',
    created_at: new Date().toISOString(),
    started_at: null,
    finished_at: null,
    duration_ms: null,
    exit_code: null,
    stdout: '',
    stderr: '',
    stdout_truncated: false,
    stderr_truncated: false,
    error: null,
    limits: { timeout_seconds: 5, memory_mb: 128 },
    backend: 'local',
    runtime: 'python',
    files: [],
    artifacts: [],
    artifacts_truncated: false,
    code: 'print(1)\n',
    stdin: '',
    payload_expired: false,
    ...overrides,
  }
}

/** An AxiosError as the client would throw it for an HTTP answer (or, with status 0, for a lost connection). */
export function httpError(status: number, data: unknown = {}, headers: Record<string, string> = {}): AxiosError {
  const config = { headers: new AxiosHeaders() } as InternalAxiosRequestConfig
  if (status === 0) return new AxiosError('Network Error', AxiosError.ERR_NETWORK, config, {})
  return new AxiosError(`Request failed with status code ${status}`, 'ERR_BAD_RESPONSE', config, {}, {
    status,
    statusText: String(status),
    data,
    headers,
    config,
  })
}

/** What GET /v1/runtimes offers by default: the standard library, and the data runtime. */
export const RUNTIMES: Runtime[] = [
  { name: 'python', description: 'Python with its standard library only.', python_version: '3.11', packages: [], default: true },
  {
    name: 'python-data',
    description: 'Python with numpy, pandas, matplotlib (Agg) and scipy.',
    python_version: '3.11',
    packages: [
      { name: 'matplotlib', version: '3.10.3' },
      { name: 'numpy', version: '2.2.6' },
      { name: 'pandas', version: '2.2.3' },
      { name: 'scipy', version: '1.15.3' },
    ],
    default: false,
  },
]

export function fakeClient(overrides: Partial<ApiClient> = {}) {
  const client = {
    createExecution: vi.fn<ApiClient['createExecution']>(async () => doc()),
    getExecution: vi.fn<ApiClient['getExecution']>(async () => doc({ status: 'succeeded', exit_code: 0 })),
    listExecutions: vi.fn<ApiClient['listExecutions']>(async () => ({ items: [], next_cursor: null })),
    cancelExecution: vi.fn<ApiClient['cancelExecution']>(async () => doc({ status: 'cancelled' })),
    listRuntimes: vi.fn<ApiClient['listRuntimes']>(async () => RUNTIMES),
    getArtifact: vi.fn<ApiClient['getArtifact']>(async (_id, path) => new Blob([`bytes of ${path}`])),
    // By default the event stream replays getExecution: a status event per document, the result at the end.
    followExecution: vi.fn<ApiClient['followExecution']>(async (id, onEvent, options): Promise<void> => {
      for (let n = 1; ; n++) {
        const current: Execution = await client.getExecution(id)
        if (options?.signal?.aborted) return
        onEvent({ event: 'status', id: `${n}-0`, status: current.status })
        if (isTerminal(current.status)) return onEvent({ event: 'result', id: `${n}-1`, execution: current })
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
    }),
    ...overrides,
  }
  return client
}

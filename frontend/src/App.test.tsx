import { act, fireEvent, render, screen, waitFor, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { describe, expect, it, vi } from 'vitest'
import App from './App'
import type { ApiClient, Execution } from './api/client'
import { doc, fakeClient, httpError } from './test/fakes'

const status = () => screen.getByRole('status', { name: 'Status' })
const runButton = () => screen.getByRole('button', { name: 'Run' })
const region = (name: 'stdout' | 'stderr') => screen.getByRole('region', { name })

function sequence(...docs: Execution[]) {
  let i = 0
  return vi.fn(async () => docs[Math.min(i++, docs.length - 1)]!)
}

describe('App', () => {
  it('meets the accessibility contract before anything runs', async () => {
    render(<App client={fakeClient()} retryMs={5} />)
    expect(screen.getByRole('textbox', { name: 'Code' })).toBeInTheDocument()
    expect(runButton()).toBeEnabled()
    expect(region('stdout')).toHaveTextContent('')
    expect(region('stderr')).toHaveTextContent('')
    expect(status()).toHaveTextContent(/^idle$/)
    expect(await screen.findByText(/No executions yet/)).toBeInTheDocument()
  })

  it('runs, follows the lifecycle and shows outputs and badges', async () => {
    const client = fakeClient({
      createExecution: vi.fn(async () => doc({ id: 'r1', status: 'queued' })),
      getExecution: sequence(
        doc({ id: 'r1', status: 'running', started_at: new Date().toISOString() }),
        doc({ id: 'r1', status: 'succeeded', exit_code: 0, duration_ms: 1234, stdout: 'Hello, world!\n', stderr: 'warn\n', stdout_truncated: true }),
      ),
    })
    const user = userEvent.setup()
    render(<App client={client} retryMs={5} />)
    const code = screen.getByRole('textbox', { name: 'Code' })
    await user.clear(code)
    await user.type(code, 'print(input())')
    await user.type(screen.getByLabelText('stdin'), 'neon')
    await user.clear(screen.getByLabelText('Timeout (s)'))
    await user.type(screen.getByLabelText('Timeout (s)'), '2.5')
    await user.click(runButton())

    expect(client.createExecution).toHaveBeenCalledWith({
      code: 'print(input())',
      stdin: 'neon',
      runtime: 'python',
      limits: { timeout_seconds: 2.5 }, // no memory_mb: the runtime's default
    })
    await waitFor(() => expect(status()).toHaveTextContent(/^succeeded$/))
    expect(region('stdout').textContent).toBe('Hello, world!\n')
    expect(region('stderr').textContent).toBe('warn\n')
    expect(screen.getByText(/Output truncated: stdout/)).toBeInTheDocument()
    expect(screen.queryByText(/Output truncated: stderr/)).toBeNull()
    expect(screen.getByTestId('exit-code')).toHaveTextContent('0')
    expect(screen.getByLabelText('Duration')).toHaveTextContent('duration 1.2 s')
    expect(runButton()).toBeEnabled()
    expect(window.location.hash).toBe('#/executions/r1')
    // History reloads when the run finishes.
    expect(vi.mocked(client.listExecutions).mock.calls.length).toBeGreaterThanOrEqual(2)
  })

  it('shows queued and running with a ticking elapsed time, and disables Run meanwhile', async () => {
    const client = fakeClient({
      createExecution: vi.fn(async () => doc({ status: 'queued' })),
      getExecution: vi.fn(async () => doc({ status: 'running' })),
    })
    render(<App client={client} retryMs={5} />)
    fireEvent.click(runButton())
    await waitFor(() => expect(status()).toHaveTextContent(/^(queued|running)$/))
    await waitFor(() => expect(status()).toHaveTextContent(/^running$/))
    expect(runButton()).toBeDisabled()
    expect(screen.getByLabelText('Elapsed time')).toHaveTextContent(/elapsed \d+ ms/)
    await waitFor(() => expect(screen.getByTestId('elapsed').textContent).not.toBe('0 ms'))
  })

  it('runs with Ctrl+Enter and Cmd+Enter', async () => {
    const client = fakeClient({ createExecution: vi.fn(async () => doc({ status: 'succeeded', exit_code: 0 })) })
    render(<App client={client} retryMs={5} />)
    fireEvent.keyDown(screen.getByRole('textbox', { name: 'Code' }), { key: 'Enter', ctrlKey: true })
    await waitFor(() => expect(client.createExecution).toHaveBeenCalledTimes(1))
    await waitFor(() => expect(runButton()).toBeEnabled())
    fireEvent.keyDown(screen.getByLabelText('stdin'), { key: 'Enter', metaKey: true })
    await waitFor(() => expect(client.createExecution).toHaveBeenCalledTimes(2))
  })

  it('cancels a running execution', async () => {
    const client = fakeClient({
      createExecution: vi.fn(async () => doc({ id: 'long', status: 'running' })),
      getExecution: vi.fn(async () => doc({ id: 'long', status: 'running', stdout: 'started\n' })),
      cancelExecution: vi.fn(async () => doc({ id: 'long', status: 'cancelled', error: 'cancelled by request', stdout: 'started\n' })),
    })
    render(<App client={client} retryMs={5} />)
    fireEvent.click(runButton())
    const cancel = await screen.findByRole('button', { name: 'Cancel' })
    fireEvent.click(cancel)
    await waitFor(() => expect(status()).toHaveTextContent(/^cancelled$/))
    expect(client.cancelExecution).toHaveBeenCalledWith('long')
    expect(screen.getByText('cancelled by request')).toBeInTheDocument()
    expect(screen.queryByRole('button', { name: 'Cancel' })).toBeNull()
    expect(runButton()).toBeEnabled()
  })

  it('shows the reason for timeouts', async () => {
    const client = fakeClient({
      createExecution: vi.fn(async () => doc({ status: 'timed_out', exit_code: null, error: 'wall-clock limit of 5s exceeded' })),
    })
    render(<App client={client} retryMs={5} />)
    fireEvent.click(runButton())
    await waitFor(() => expect(status()).toHaveTextContent(/^timed_out$/))
    expect(screen.getByText('wall-clock limit of 5s exceeded')).toBeInTheDocument()
    expect(screen.queryByTestId('exit-code')).toBeNull()
  })

  it.each([
    [
      422,
      { detail: [{ loc: ['body', 'limits', 'memory_mb'], msg: 'Input should be less than or equal to 512', type: 'less_than_equal' }] },
      /Memory \(limits\.memory_mb\): Input should be less than or equal to 512/,
    ],
    [413, { detail: [{ loc: ['body', 'code'], msg: 'code is larger than 65536 bytes', type: 'too_large' }] }, /Code is too large/],
    [429, { detail: 'slow down' }, /Try again in 3 s/],
    [503, { detail: 'the execution could not be queued; try again' }, /HTTP 503: the execution could not be queued/],
    [401, { detail: 'missing API key' }, /needs a valid API key/],
    [0, undefined, /Cannot reach the API/],
  ])('explains a failed submit (HTTP %s)', async (code, body, message) => {
    const client = fakeClient({ createExecution: vi.fn(async () => Promise.reject(httpError(code, body, { 'retry-after': '3' }))) })
    render(<App client={client} retryMs={5} />)
    fireEvent.click(runButton())
    const alert = await screen.findByRole('alert')
    expect(alert).toHaveTextContent(message)
    expect(status()).toHaveTextContent(/^idle$/)
    expect(runButton()).toBeEnabled()
  })

  it('marks the field a 422 names as invalid', async () => {
    const client = fakeClient({
      createExecution: vi.fn(async () =>
        Promise.reject(httpError(422, { detail: [{ loc: ['body', 'limits', 'timeout_seconds'], msg: 'Input should be greater than 0', type: 'greater_than' }] })),
      ),
    })
    render(<App client={client} retryMs={5} />)
    fireEvent.click(runButton())
    await screen.findByRole('alert')
    expect(screen.getByLabelText('Timeout (s)')).toHaveAttribute('aria-invalid', 'true')
    expect(screen.getByLabelText('Memory (MB)')).not.toHaveAttribute('aria-invalid')
  })

  it('shows output as it arrives, before the result', async () => {
    let finish!: () => void
    const done = new Promise<void>((resolve) => (finish = resolve))
    const client = fakeClient({
      createExecution: vi.fn(async () => doc({ id: 'live', status: 'queued' })),
      followExecution: vi.fn<ApiClient['followExecution']>(async (_id, onEvent) => {
        onEvent({ event: 'status', id: '1-0', status: 'running' })
        onEvent({ event: 'stdout', id: '2-0', offset: 0, data: 'step 1\n', truncated: false })
        await done
        onEvent({ event: 'stdout', id: '3-0', offset: 7, data: 'step 2\n', truncated: false })
        onEvent({ event: 'status', id: '4-0', status: 'succeeded' })
        onEvent({ event: 'result', id: '4-0', execution: doc({ id: 'live', status: 'succeeded', exit_code: 0, stdout: 'step 1\nstep 2\n' }) })
      }),
    })
    render(<App client={client} retryMs={5} />)
    fireEvent.click(runButton())
    await waitFor(() => expect(region('stdout').textContent).toBe('step 1\n'))
    expect(status()).toHaveTextContent(/^running$/)
    expect(client.getExecution).not.toHaveBeenCalled() // no polling
    await act(async () => finish())
    await waitFor(() => expect(status()).toHaveTextContent(/^succeeded$/))
    expect(region('stdout').textContent).toBe('step 1\nstep 2\n')
  })

  it('resumes the stream after a lost connection without repeating output', async () => {
    const seen: (string | null | undefined)[] = []
    const client = fakeClient({
      createExecution: vi.fn(async () => doc({ id: 'r', status: 'running' })),
      followExecution: vi.fn<ApiClient['followExecution']>(async (_id, onEvent, options) => {
        seen.push(options?.lastEventId)
        if (seen.length === 1) {
          onEvent({ event: 'stdout', id: '1-0', offset: 0, data: 'once\n', truncated: false })
          throw httpError(0)
        }
        onEvent({ event: 'stdout', id: '2-0', offset: 5, data: 'twice\n', truncated: false })
        onEvent({ event: 'result', id: '3-0', execution: doc({ id: 'r', status: 'succeeded', exit_code: 0, stdout: 'once\ntwice\n' }) })
      }),
    })
    render(<App client={client} retryMs={5} />)
    fireEvent.click(runButton())
    await waitFor(() => expect(status()).toHaveTextContent(/^succeeded$/))
    expect(seen).toEqual([null, '1-0'])
    expect(region('stdout').textContent).toBe('once\ntwice\n')
  })

  it('closes the event stream once the run is cancelled', async () => {
    let signal: AbortSignal | undefined
    const client = fakeClient({
      createExecution: vi.fn(async () => doc({ id: 'quiet', status: 'running' })),
      followExecution: vi.fn<ApiClient['followExecution']>(async (_id, onEvent, options) => {
        signal = options?.signal
        onEvent({ event: 'status', id: '1-0', status: 'running' })
        await new Promise((_, reject) => signal?.addEventListener('abort', () => reject(new Error('aborted'))))
      }),
      cancelExecution: vi.fn(async () => doc({ id: 'quiet', status: 'cancelled', error: 'cancelled by request' })),
    })
    render(<App client={client} retryMs={5} />)
    fireEvent.click(runButton())
    fireEvent.click(await screen.findByRole('button', { name: 'Cancel' }))
    await waitFor(() => expect(status()).toHaveTextContent(/^cancelled$/))
    expect(signal?.aborted).toBe(true) // a quiet program's stream does not stay open after the page is done with it
  })

  it('loads more history from the next cursor', async () => {
    const client = fakeClient({
      listExecutions: vi.fn(async (_limit?: number, cursor?: string | null) =>
        cursor === '20'
          ? { items: [doc({ id: 'older', status: 'failed' })], next_cursor: null }
          : { items: [doc({ id: 'newer', status: 'succeeded' })], next_cursor: '20' },
      ),
    })
    render(<App client={client} />)
    const history = screen.getByRole('navigation', { name: 'Recent executions' })
    expect(await within(history).findAllByRole('link')).toHaveLength(1)
    fireEvent.click(within(history).getByRole('button', { name: 'Load more' }))
    await waitFor(() => expect(within(history).getAllByRole('link')).toHaveLength(2))
    expect(client.listExecutions).toHaveBeenLastCalledWith(20, '20')
    expect(within(history).queryByRole('button', { name: 'Load more' })).toBeNull()
  })

  it('keeps following through a lost connection and says so', async () => {
    const client = fakeClient({
      createExecution: vi.fn(async () => doc({ status: 'running' })),
      getExecution: vi
        .fn()
        .mockRejectedValueOnce(httpError(0))
        .mockResolvedValue(doc({ status: 'succeeded', exit_code: 0, stdout: 'back\n' })),
    })
    render(<App client={client} retryMs={5} />)
    fireEvent.click(runButton())
    expect(await screen.findByRole('alert')).toHaveTextContent('Connection lost')
    await waitFor(() => expect(status()).toHaveTextContent(/^succeeded$/))
    expect(screen.queryByRole('alert')).toBeNull()
    expect(region('stdout').textContent).toBe('back\n')
  })

  it('sends the stored API key and explains a 401', async () => {
    const user = userEvent.setup()
    render(<App client={fakeClient({ createExecution: vi.fn(async () => Promise.reject(httpError(401, { detail: 'bad key' }))) })} />)
    await user.type(screen.getByLabelText(/API key/), 'k-123')
    expect(window.localStorage.getItem('executioner.apiKey')).toBe('k-123')
    await user.click(runButton())
    const alert = await screen.findByRole('alert')
    expect(alert).toHaveTextContent('API key required')
    await user.click(within(alert).getByRole('button', { name: 'Enter API key' }))
    expect(screen.getByLabelText(/API key/)).toHaveFocus()
    await user.click(screen.getByRole('button', { name: 'Clear key' }))
    expect(window.localStorage.getItem('executioner.apiKey')).toBeNull()
  })

  it('loads the stored API key into the field', () => {
    window.localStorage.setItem('executioner.apiKey', 'persisted')
    render(<App client={fakeClient()} />)
    expect(screen.getByLabelText(/API key/)).toHaveValue('persisted')
  })

  it('lists recent executions and reopens one on click', async () => {
    const old = doc({
      id: 'old-1',
      status: 'failed',
      exit_code: 1,
      duration_ms: 42,
      stderr: 'Traceback (most recent call last):\nZeroDivisionError: division by zero\n',
      code: '1 / 0\n',
      limits: { timeout_seconds: 9, memory_mb: 64 },
    })
    // The list carries summaries (no code, input or output); this browser remembers what it sent.
    const summary = (execution: Execution) => {
      const rest: Partial<Execution> = { ...execution }
      for (const field of ['code', 'stdin', 'stdout', 'stderr'] as const) delete rest[field]
      return rest as Omit<Execution, 'code' | 'stdin' | 'stdout' | 'stderr'>
    }
    window.localStorage.setItem('executioner.sources', JSON.stringify({ 'old-1': { code: '1 / 0\n', stdin: '' } }))
    const client = fakeClient({
      listExecutions: vi.fn(async () => ({
        items: [summary(old), summary(doc({ id: 'old-2', status: 'succeeded' }))],
        next_cursor: null,
      })),
      getExecution: vi.fn(async () => old),
    })
    render(<App client={client} />)
    const history = screen.getByRole('navigation', { name: 'Recent executions' })
    const links = await within(history).findAllByRole('link')
    expect(links).toHaveLength(2)
    expect(links[0]).toHaveTextContent('failed')
    expect(links[0]).toHaveTextContent('1 / 0')
    fireEvent.click(links[0]!)
    expect(await screen.findByText(/ZeroDivisionError/)).toBeInTheDocument()
    expect(client.getExecution).toHaveBeenCalledWith('old-1')
    expect(status()).toHaveTextContent(/^failed$/)
    expect(region('stderr')).toHaveTextContent('ZeroDivisionError')
    expect(screen.getByRole('textbox', { name: 'Code' })).toHaveValue('1 / 0\n')
    expect(screen.getByLabelText('Timeout (s)')).toHaveValue(9)
    expect(screen.getByLabelText('Memory (MB)')).toHaveValue(64)
    expect(links[0]).toHaveAttribute('aria-current', 'true')
    expect(window.location.hash).toBe('#/executions/old-1')
  })

  it('shows a loading state, then an error with retry, for the history', async () => {
    let reject!: (e: unknown) => void
    const client = fakeClient({
      listExecutions: vi
        .fn()
        .mockImplementationOnce(() => new Promise((_, r) => (reject = r)))
        .mockResolvedValue({ items: [], next_cursor: null }),
    })
    render(<App client={client} />)
    expect(screen.getByRole('list', { name: 'Loading history' })).toBeInTheDocument()
    await act(async () => reject(httpError(503, { detail: 'store down' })))
    expect(await screen.findByText(/Couldn't load history/)).toHaveTextContent('store down')
    fireEvent.click(screen.getByRole('button', { name: 'Refresh' }))
    expect(await screen.findByText(/No executions yet/)).toBeInTheDocument()
  })

  it('opens the execution named in the address', async () => {
    window.history.replaceState(null, '', '/#/executions/deep')
    const client = fakeClient({ getExecution: vi.fn(async () => doc({ id: 'deep', status: 'succeeded', stdout: 'linked\n', exit_code: 0 })) })
    render(<App client={client} />)
    await waitFor(() => expect(status()).toHaveTextContent(/^succeeded$/))
    expect(client.getExecution).toHaveBeenCalledWith('deep')
    expect(region('stdout').textContent).toBe('linked\n')
  })
})

// The runtime selector and the input files: what the page offers, what it sends, and how it shows what the API refused.
import { act, fireEvent, render, screen, waitFor, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { describe, expect, it, vi } from 'vitest'
import App from './App'
import { doc, fakeClient, httpError, RUNTIMES } from './test/fakes'

const runtimeBox = () => screen.getByRole('combobox', { name: 'Runtime' })
const runButton = () => screen.getByRole('button', { name: 'Run' })
const fileInput = () => screen.getByLabelText('Input files')
const pickedList = () => screen.getByRole('list', { name: 'Picked files' })
// Each row: the file's name and size (then its remove button, ✕).
const pickedRows = () => within(pickedList()).getAllByRole('listitem').map((row) => row.textContent?.replace(/✕$/, ''))

describe('runtime selector', () => {
  it('offers the runtimes of GET /v1/runtimes with their Python and packages, the default preselected', async () => {
    render(<App client={fakeClient()} />)
    await waitFor(() => expect(within(runtimeBox()).getAllByRole('option')).toHaveLength(2))
    const options = within(runtimeBox()).getAllByRole('option')
    expect(options.map((o) => o.textContent)).toEqual(['python · Python 3.11', 'python-data · Python 3.11'])
    expect(runtimeBox()).toHaveValue('python')
    expect(runtimeBox()).toHaveAccessibleDescription('Python with its standard library only.')
    expect(options[1]).toHaveAttribute('title', 'matplotlib 3.10.3, numpy 2.2.6, pandas 2.2.3, scipy 1.15.3')
  })

  it('preselects the runtime the server marks as default', async () => {
    const client = fakeClient({ listRuntimes: vi.fn(async () => RUNTIMES.map((r) => ({ ...r, default: r.name === 'python-data' }))) })
    render(<App client={client} />)
    await waitFor(() => expect(runtimeBox()).toHaveValue('python-data'))
  })

  it('sends the chosen runtime, and lists its pinned packages', async () => {
    const client = fakeClient({ createExecution: vi.fn(async () => doc({ status: 'succeeded', exit_code: 0, runtime: 'python-data' })) })
    const user = userEvent.setup()
    render(<App client={client} />)
    await screen.findByRole('option', { name: 'python-data · Python 3.11' })
    await user.selectOptions(runtimeBox(), 'python-data')
    expect(runtimeBox()).toHaveAccessibleDescription('Python with numpy, pandas, matplotlib (Agg) and scipy.')
    await user.click(screen.getByText('4 pinned packages'))
    expect(screen.getByText('pandas').parentElement).toHaveTextContent('pandas 2.2.3')
    await user.click(runButton())
    expect(client.createExecution).toHaveBeenCalledWith(expect.objectContaining({ runtime: 'python-data' }))
    expect(await screen.findByTitle('Execution exec-1')).toHaveTextContent('local · python-data · 5s')
  })

  it('still runs in the default runtime when the list cannot be loaded, says why, and retries', async () => {
    const client = fakeClient({ listRuntimes: vi.fn().mockRejectedValueOnce(httpError(503, { detail: 'store down' })).mockResolvedValue(RUNTIMES) })
    render(<App client={client} />)
    expect(await screen.findByText(/Cannot list runtimes/)).toHaveTextContent('store down')
    expect(runtimeBox()).toHaveValue('python')
    fireEvent.click(runButton())
    await waitFor(() => expect(client.createExecution).toHaveBeenCalledWith(expect.objectContaining({ runtime: 'python' })))
    fireEvent.click(screen.getByRole('button', { name: 'Retry' }))
    await waitFor(() => expect(within(runtimeBox()).getAllByRole('option')).toHaveLength(2))
    expect(screen.queryByText(/Cannot list runtimes/)).toBeNull()
  })

  it('lists the runtimes again once an API key is entered after a 401', async () => {
    const client = fakeClient({
      listRuntimes: vi.fn().mockRejectedValueOnce(httpError(401, { detail: 'missing API key' })).mockResolvedValue(RUNTIMES),
    })
    const user = userEvent.setup()
    render(<App client={client} />)
    expect(await screen.findByText(/Cannot list runtimes/)).toHaveTextContent('needs a valid API key')
    await user.type(screen.getByLabelText(/API key/), 'k3y')
    await waitFor(() => expect(within(runtimeBox()).getAllByRole('option')).toHaveLength(2))
    expect(client.listRuntimes).toHaveBeenCalledTimes(2) // once typing paused, not once per character
  })

  it('shows the runtime of an execution reopened from history', async () => {
    window.history.replaceState(null, '', '/#/executions/old')
    let offer!: () => void
    const client = fakeClient({
      getExecution: vi.fn(async () => doc({ id: 'old', status: 'succeeded', runtime: 'python-data' })),
      listRuntimes: vi.fn(() => new Promise<typeof RUNTIMES>((resolve) => (offer = () => resolve(RUNTIMES)))),
    })
    render(<App client={client} />)
    await waitFor(() => expect(runtimeBox()).toHaveValue('python-data'))
    // The list (with python as its default) arriving after the document does not override what the execution ran in.
    await act(async () => offer())
    expect(within(runtimeBox()).getAllByRole('option')).toHaveLength(2)
    expect(runtimeBox()).toHaveValue('python-data')
  })

  it('shows the runtime of a reopened execution that the server no longer offers', async () => {
    window.history.replaceState(null, '', '/#/executions/gone')
    const client = fakeClient({ getExecution: vi.fn(async () => doc({ id: 'gone', status: 'succeeded', runtime: 'python-r' })) })
    render(<App client={client} />)
    await waitFor(() => expect(runtimeBox()).toHaveValue('python-r'))
    expect(screen.getByText('Not offered by this server.')).toBeInTheDocument()
  })

  it('marks the runtime a 422 names', async () => {
    const client = fakeClient({
      createExecution: vi.fn(async () =>
        Promise.reject(httpError(422, { detail: [{ loc: ['body', 'runtime'], msg: "Input should be 'python' or 'python-data'", type: 'literal_error' }] })),
      ),
    })
    render(<App client={client} />)
    fireEvent.click(runButton())
    expect(await screen.findByRole('alert')).toHaveTextContent("Runtime (runtime): Input should be 'python' or 'python-data'")
    expect(runtimeBox()).toHaveAttribute('aria-invalid', 'true')
  })
})

describe('input files', () => {
  const csv = new File(['x,y\n1,2\n3,4\n'], 'data.csv', { type: 'text/csv' })
  const notes = new File(['héllo'], 'notes.txt', { type: 'text/plain' })

  it('sends picked files as {path, content_base64} and shows their names and sizes', async () => {
    const client = fakeClient({ createExecution: vi.fn(async () => doc({ status: 'succeeded', exit_code: 0 })) })
    const user = userEvent.setup()
    render(<App client={client} />)
    await user.upload(fileInput(), [csv, notes])
    expect(pickedRows()).toEqual(['data.csv12 B', 'notes.txt6 B'])
    await user.click(runButton())
    expect(client.createExecution).toHaveBeenCalledWith(
      expect.objectContaining({
        files: [
          { path: 'data.csv', content_base64: btoa('x,y\n1,2\n3,4\n') },
          { path: 'notes.txt', content_base64: 'aMOpbGxv' }, // UTF-8 bytes, not characters
        ],
      }),
    )
  })

  it('removes a file, replaces one picked again under the same name, and sends no files when none are left', async () => {
    const client = fakeClient({ createExecution: vi.fn(async () => doc({ status: 'succeeded', exit_code: 0 })) })
    const user = userEvent.setup()
    render(<App client={client} />)
    await user.upload(fileInput(), [csv, notes])
    await user.upload(fileInput(), new File(['a,b\n'], 'data.csv'))
    expect(pickedRows()).toEqual(['notes.txt6 B', 'data.csv4 B'])
    await user.click(screen.getByRole('button', { name: 'Remove notes.txt' }))
    await user.click(screen.getByRole('button', { name: 'Remove data.csv' }))
    expect(screen.queryByRole('list', { name: 'Picked files' })).toBeNull()
    await user.click(runButton())
    expect(vi.mocked(client.createExecution).mock.calls[0]![0]).not.toHaveProperty('files')
  })

  it.each([
    [
      413,
      { loc: ['body', 'files', 1, 'content_base64'], msg: "file 'notes.txt': larger than 1000000 bytes", type: 'too_large' },
      "file 'notes.txt': larger than 1000000 bytes. Remove it or pick a smaller file.",
    ],
    [
      422,
      { loc: ['body', 'files', 1, 'path'], msg: "file 'notes.txt': the path repeats or clashes with another file's", type: 'value_error' },
      "file 'notes.txt': the path repeats or clashes with another file's",
    ],
  ])('shows a %s naming a file next to the files, and marks that file', async (code, item, message) => {
    const client = fakeClient({ createExecution: vi.fn(async () => Promise.reject(httpError(code, { detail: [item] }))) })
    const user = userEvent.setup()
    render(<App client={client} />)
    await user.upload(fileInput(), [csv, notes])
    await user.click(runButton())
    const alert = await screen.findByRole('alert')
    expect(alert).toHaveTextContent(message)
    // Next to the files (in the same block as the picker and the list), not in the result pane.
    expect(alert.closest('div.flex-col')).toContainElement(pickedList())
    expect(fileInput()).toHaveAttribute('aria-invalid', 'true')
    expect(fileInput()).toHaveAccessibleDescription(new RegExp(message.slice(0, 20)))
    const [first, second] = within(pickedList()).getAllByRole('listitem')
    expect(second).toHaveClass('text-danger')
    expect(first).not.toHaveClass('text-danger')
    // Changing the files makes the message stale: it goes.
    await user.click(screen.getByRole('button', { name: 'Remove notes.txt' }))
    expect(screen.queryByRole('alert')).toBeNull()
  })

  it('restores the files of an execution reopened from history', async () => {
    window.history.replaceState(null, '', '/#/executions/with-files')
    const client = fakeClient({
      getExecution: vi.fn(async () =>
        doc({ id: 'with-files', status: 'succeeded', files: [{ path: 'in/data.csv', content_base64: btoa('x,y\n1,2\n') }] }),
      ),
    })
    render(<App client={client} />)
    await waitFor(() => expect(pickedRows()).toEqual(['in/data.csv8 B']))
  })
})

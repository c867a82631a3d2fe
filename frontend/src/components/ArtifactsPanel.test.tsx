import { fireEvent, render, screen, waitFor, within } from '@testing-library/react'
import { beforeEach, describe, expect, it, vi } from 'vitest'
import App from '../App'
import type { Artifact } from '../api/client'
import { doc, fakeClient, httpError } from '../test/fakes'
import { ArtifactsPanel } from './ArtifactsPanel'

const PNG_BYTES = 'fake png'
const artifacts: Artifact[] = [
  { path: 'plot.png', size: 8, content_type: 'image/png' },
  { path: 'tables/summary.csv', size: 12, content_type: 'text/csv' },
  { path: 'chart.svg', size: 40, content_type: 'image/svg+xml' },
  { path: 'report.html', size: 30, content_type: 'text/html' },
]
const region = () => screen.getByRole('region', { name: 'artifacts' })

let created: Blob[]
let revoke: ReturnType<typeof vi.fn<(url: string) => void>>
beforeEach(() => {
  created = []
  vi.spyOn(URL, 'createObjectURL').mockImplementation((blob) => {
    created.push(blob as Blob)
    return `blob:test/${created.length}`
  })
  revoke = vi.fn<(url: string) => void>()
  vi.spyOn(URL, 'revokeObjectURL').mockImplementation(revoke)
})

describe('artifacts region', () => {
  it('shows an image artifact as a picture named by its path, fetched through the client', async () => {
    const client = fakeClient({ getArtifact: vi.fn(async () => new Blob([PNG_BYTES])) })
    render(<ArtifactsPanel client={client} executionId="e1" artifacts={artifacts.slice(0, 1)} truncated={false} />)
    const img = await within(region()).findByRole('img', { name: 'plot.png' })
    expect(img).toHaveAttribute('src', `data:image/png;base64,${btoa(PNG_BYTES)}`)
    expect(client.getArtifact).toHaveBeenCalledWith('e1', 'plot.png')
    expect(screen.queryByRole('note')).toBeNull()
  })

  it('offers every other file, SVG and HTML included, only as a download that is never rendered', async () => {
    const client = fakeClient()
    render(<ArtifactsPanel client={client} executionId="e1" artifacts={artifacts} truncated={false} />)
    await waitFor(() => expect(within(region()).getAllByRole('link')).toHaveLength(3))
    await within(region()).findByRole('img', { name: 'plot.png' })
    expect(within(region()).getAllByRole('img').map((img) => img.getAttribute('alt'))).toEqual(['plot.png'])
    const csv = within(region()).getByRole('link', { name: 'tables/summary.csv' })
    expect(csv.getAttribute('href')).toMatch(/^blob:test\/\d$/)
    expect(csv).toHaveAttribute('download', 'summary.csv')
    expect(within(region()).getByRole('link', { name: 'chart.svg' })).toHaveAttribute('download', 'chart.svg')
    expect(within(region()).getByRole('link', { name: 'report.html' })).toHaveAttribute('download', 'report.html')
    // Whatever the file says it is, the browser gets bytes to save, not a document to render in this origin.
    expect(created.map((blob) => blob.type)).toEqual(['application/octet-stream', 'application/octet-stream', 'application/octet-stream'])
  })

  it('revokes the object URLs of the downloads it replaces', async () => {
    const client = fakeClient()
    const { rerender, unmount } = render(<ArtifactsPanel client={client} executionId="e1" artifacts={artifacts.slice(0, 2)} truncated={false} />)
    await within(region()).findByRole('link', { name: 'tables/summary.csv' })
    await within(region()).findByRole('img', { name: 'plot.png' })
    expect(revoke).not.toHaveBeenCalled()
    rerender(<ArtifactsPanel client={client} executionId="e2" artifacts={artifacts.slice(0, 2)} truncated={false} />)
    expect(revoke.mock.calls).toEqual([['blob:test/1']])
    await waitFor(() => expect(within(region()).getByRole('link', { name: 'tables/summary.csv' })).toHaveAttribute('href', 'blob:test/2'))
    expect(client.getArtifact).toHaveBeenLastCalledWith('e2', 'tables/summary.csv')
    unmount()
    expect(revoke.mock.calls).toEqual([['blob:test/1'], ['blob:test/2']])
  })

  it('notes artifacts_truncated, and says why an artifact could not be loaded', async () => {
    const client = fakeClient({ getArtifact: vi.fn(async () => Promise.reject(httpError(404, { detail: 'the artifacts have expired' }))) })
    render(<ArtifactsPanel client={client} executionId="e1" artifacts={artifacts.slice(0, 1)} truncated />)
    expect(within(region()).getByRole('note')).toHaveTextContent('Artifacts truncated')
    expect(await within(region()).findByText(/Cannot load plot.png/)).toHaveTextContent('the artifacts have expired')
    expect(within(region()).queryByRole('img')).toBeNull()
  })
})

describe('artifacts in the page', () => {
  it('appear with the result of a run that wrote some, and not for one that wrote none', async () => {
    const client = fakeClient({
      createExecution: vi.fn(async () => doc({ id: 'plot', status: 'queued' })),
      getExecution: vi.fn(async () => doc({ id: 'plot', status: 'succeeded', exit_code: 0, artifacts: artifacts.slice(0, 1) })),
    })
    render(<App client={client} retryMs={5} />)
    expect(screen.queryByRole('region', { name: 'artifacts' })).toBeNull()
    fireEvent.click(screen.getByRole('button', { name: 'Run' }))
    expect(await within(await screen.findByRole('region', { name: 'artifacts' })).findByRole('img', { name: 'plot.png' })).toBeInTheDocument()
    expect(client.getArtifact).toHaveBeenCalledWith('plot', 'plot.png')

    vi.mocked(client.createExecution).mockResolvedValue(doc({ id: 'plain', status: 'succeeded', exit_code: 0 }))
    vi.mocked(client.getExecution).mockResolvedValue(doc({ id: 'plain', status: 'succeeded', exit_code: 0 }))
    fireEvent.click(screen.getByRole('button', { name: 'Run' }))
    await waitFor(() => expect(screen.queryByRole('region', { name: 'artifacts' })).toBeNull())
  })
})

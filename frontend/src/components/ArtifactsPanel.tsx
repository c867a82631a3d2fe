import { useEffect, useState } from 'react'
import type { ApiClient, Artifact } from '../api/client'
import { describeError } from '../api/errors'
import { readDataUrl } from '../dataUrl'
import { formatBytes } from '../format'

// Raster images only (the API's INLINE_IMAGE_TYPES): an SVG or HTML artifact is never rendered, only downloaded.
const INLINE_IMAGE_TYPES: readonly string[] = ['image/png', 'image/jpeg', 'image/gif', 'image/webp']

type Loaded = { url: string } | { failure: string } | null

/**
 * The artifact's bytes as a URL the page can use. The API wants the key in a header, so neither an <img> nor a link
 * can fetch it by itself: the client does. A picture becomes a data: URL of the raster type it is listed as (the
 * page's CSP allows images from 'self' and data: only); any other file an object URL of octet-stream bytes, revoked
 * when the artifact is replaced, so that whatever it holds (HTML, SVG) the browser saves it and never renders it in
 * this origin.
 */
function useArtifactUrl(client: ApiClient, executionId: string, artifact: Artifact, picture: boolean): Loaded {
  const [loaded, setLoaded] = useState<Loaded>(null)
  useEffect(() => {
    let live = true
    let objectUrl: string | null = null
    client
      .getArtifact(executionId, artifact.path)
      .then(async (blob) => {
        if (picture) {
          const url = await readDataUrl(new Blob([blob], { type: artifact.content_type }))
          if (live) setLoaded({ url })
        } else if (live) {
          objectUrl = URL.createObjectURL(new Blob([blob], { type: 'application/octet-stream' }))
          setLoaded({ url: objectUrl })
        }
      })
      .catch((error: unknown) => {
        if (live) setLoaded({ failure: describeError(error).message })
      })
    return () => {
      live = false
      if (objectUrl) URL.revokeObjectURL(objectUrl)
    }
  }, [client, executionId, artifact.path, artifact.content_type, picture])
  return loaded
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1)
}

function ArtifactItem({ client, executionId, artifact }: { client: ApiClient; executionId: string; artifact: Artifact }) {
  const picture = INLINE_IMAGE_TYPES.includes(artifact.content_type)
  const loaded = useArtifactUrl(client, executionId, artifact, picture)
  const caption = (
    <span className="font-mono text-xs text-muted">
      {artifact.path} · {formatBytes(artifact.size)}
    </span>
  )
  if (loaded && 'failure' in loaded) {
    return (
      <li className="flex flex-col gap-1">
        {caption}
        <span className="text-xs text-danger">Cannot load {artifact.path}: {loaded.failure}</span>
      </li>
    )
  }
  if (picture) {
    return (
      <li>
        <figure className="flex flex-col gap-1">
          {loaded ? (
            <img src={loaded.url} alt={artifact.path} className="max-h-[32rem] max-w-full self-start rounded border border-edge bg-white object-contain" />
          ) : (
            <div aria-busy="true" aria-label={`Loading ${artifact.path}`} className="h-40 animate-pulse rounded bg-panel-2" />
          )}
          <figcaption>{caption}</figcaption>
        </figure>
      </li>
    )
  }
  return (
    <li className="flex items-center gap-2">
      {loaded ? (
        <a href={loaded.url} download={baseName(artifact.path)} className="font-mono text-sm text-cyan underline">
          {artifact.path}
        </a>
      ) : (
        <span aria-busy="true" className="font-mono text-sm text-muted">
          {artifact.path}
        </span>
      )}
      <span className="font-mono text-xs text-muted">
        {formatBytes(artifact.size)} · {artifact.content_type}
      </span>
    </li>
  )
}

export interface ArtifactsPanelProps {
  client: ApiClient
  executionId: string
  artifacts: Artifact[]
  truncated: boolean
}

/** What the program wrote under outputs/: pictures shown, every other file a download link. */
export function ArtifactsPanel({ client, executionId, artifacts, truncated }: ArtifactsPanelProps) {
  return (
    <div className="flex flex-col gap-1">
      <h3 className="font-mono text-xs font-semibold tracking-widest text-lime uppercase">artifacts</h3>
      <section role="region" aria-label="artifacts" className="flex flex-col gap-3 rounded-md border border-edge bg-void/90 p-3">
        {artifacts.length > 0 && (
          <ul className="flex flex-col gap-3">
            {artifacts.map((artifact) => (
              // Keyed by execution too: another run's plot.png is another file, fetched afresh.
              <ArtifactItem key={`${executionId}/${artifact.path}`} client={client} executionId={executionId} artifact={artifact} />
            ))}
          </ul>
        )}
        {truncated && (
          <p role="note" className="rounded border border-amber/70 px-2 py-0.5 text-xs text-amber">
            Artifacts truncated: the program wrote more files or bytes under outputs/ than are kept; the rest were dropped.
          </p>
        )}
      </section>
    </div>
  )
}

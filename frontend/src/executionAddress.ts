// The page's address for one execution (#/executions/<id>), used by history links and on first load.
export const executionHref = (id: string) => `#/executions/${encodeURIComponent(id)}`

export function executionIdFromHash(hash: string): string | null {
  const match = /^#\/executions\/([^/]+)$/.exec(hash)
  return match ? decodeURIComponent(match[1]!) : null
}

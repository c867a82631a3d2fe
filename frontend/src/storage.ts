// Small, failure-tolerant localStorage helpers (private mode and full quotas must not break the page).
const API_KEY = 'executioner.apiKey'
const SOURCES = 'executioner.sources'
const MAX_SOURCES = 50

export interface SavedSource {
  code: string
  stdin: string
}

function read(key: string): string | null {
  try {
    return window.localStorage.getItem(key)
  } catch {
    return null
  }
}

function write(key: string, value: string | null) {
  try {
    if (value === null) window.localStorage.removeItem(key)
    else window.localStorage.setItem(key, value)
  } catch {
    /* storage unavailable: keep working without persistence */
  }
}

export const loadApiKey = (): string => read(API_KEY) ?? ''
export const saveApiKey = (key: string) => write(API_KEY, key.trim() ? key.trim() : null)

function loadSources(): Record<string, SavedSource> {
  try {
    const parsed: unknown = JSON.parse(read(SOURCES) ?? '{}')
    return parsed && typeof parsed === 'object' ? (parsed as Record<string, SavedSource>) : {}
  } catch {
    return {}
  }
}

/** The API returns results, not code: remember what this browser sent so history can reopen it. */
export function rememberSource(id: string, source: SavedSource) {
  const all = loadSources()
  delete all[id]
  const entries = [...Object.entries(all), [id, source] as const].slice(-MAX_SOURCES)
  write(SOURCES, JSON.stringify(Object.fromEntries(entries)))
}

export function recallSource(id: string): SavedSource | undefined {
  return loadSources()[id]
}

/** The code and stdin of an execution: from the document when the API includes them, else from this browser. */
export function sourceOf(execution: { id: string; code?: string; stdin?: string }): SavedSource | undefined {
  if (execution.code) return { code: execution.code, stdin: execution.stdin ?? '' }
  return recallSource(execution.id)
}

import { useId } from 'react'
import type { Runtime } from '../api/client'

export interface RuntimeSelectProps {
  runtimes: Runtime[]
  value: string
  onChange: (name: string) => void
  /** Why the list could not be loaded, if it could not. */
  problem: string | null
  onRetry: () => void
  invalid?: boolean
  describedBy?: string
}

const packageList = (runtime: Runtime) => runtime.packages.map((pkg) => `${pkg.name} ${pkg.version}`).join(', ')

/**
 * A native <select> (role combobox) named "Runtime". Under it, what the chosen runtime offers, and every package
 * it pins (with its version) behind a disclosure.
 */
export function RuntimeSelect({ runtimes, value, onChange, problem, onRetry, invalid, describedBy }: RuntimeSelectProps) {
  const detailId = useId()
  const chosen = runtimes.find((runtime) => runtime.name === value)
  // A reopened execution may name a runtime this server no longer offers (or not yet listed): show it as it is.
  const names = chosen || !value ? runtimes.map((runtime) => runtime.name) : [...runtimes.map((runtime) => runtime.name), value]
  return (
    <div className="min-w-0">
      <label htmlFor="runtime" className="mb-1 block font-mono text-xs text-muted">
        Runtime
      </label>
      <select
        id="runtime"
        value={value}
        onChange={(e) => onChange(e.target.value)}
        aria-invalid={invalid}
        aria-describedby={[detailId, describedBy].filter(Boolean).join(' ')}
        className="field w-56"
      >
        {names.map((name) => {
          const runtime = runtimes.find((r) => r.name === name)
          return (
            <option key={name} value={name} title={runtime?.packages.length ? packageList(runtime) : undefined}>
              {runtime ? `${name} · Python ${runtime.python_version}` : name}
            </option>
          )
        })}
      </select>
      <div id={detailId} className="mt-1 max-w-56 font-mono text-xs text-muted">
        {problem ? (
          <p className="text-amber">
            Cannot list runtimes: {problem}{' '}
            <button type="button" onClick={onRetry} className="rounded px-1 text-cyan underline hover:bg-cyan/10">
              Retry
            </button>
          </p>
        ) : chosen ? (
          <p>{chosen.description}</p>
        ) : (
          <p>{runtimes.length ? 'Not offered by this server.' : 'Loading runtimes…'}</p>
        )}
      </div>
      {chosen && chosen.packages.length > 0 && (
        <details className="mt-1 max-w-56 font-mono text-xs text-muted">
          <summary className="cursor-pointer text-cyan">{chosen.packages.length} pinned packages</summary>
          <ul className="mt-1 columns-2 gap-3">
            {chosen.packages.map((pkg) => (
              <li key={pkg.name}>
                {pkg.name} <span className="text-ink">{pkg.version}</span>
              </li>
            ))}
          </ul>
        </details>
      )}
    </div>
  )
}

import type { ReactNode } from 'react'
import { formatBytes } from '../format'
import type { PickedFile } from '../inputFiles'

export interface FileInputsProps {
  files: PickedFile[]
  onPick: (files: File[]) => void
  onRemove: (path: string) => void
  /** The index of the file a 413/422 named, marked in the list. */
  invalidIndex?: number
  /** A problem with the files, shown right under them. */
  problem?: ReactNode
  describedBy?: string
}

/** Local files that go with the run, each placed at its name in the program's working directory. */
export function FileInputs({ files, onPick, onRemove, invalidIndex, problem, describedBy }: FileInputsProps) {
  return (
    <div className="flex flex-col gap-2">
      <div className="flex flex-wrap items-center gap-3">
        <label htmlFor="files" className="font-mono text-xs tracking-widest text-magenta uppercase">
          Input files
        </label>
        <input
          id="files"
          type="file"
          multiple
          aria-invalid={problem ? true : undefined}
          aria-describedby={describedBy}
          onChange={(e) => {
            const picked = Array.from(e.target.files ?? [])
            e.target.value = '' // picking the same file again (after changing it on disk) is a new pick
            if (picked.length) onPick(picked)
          }}
          className="max-w-full font-mono text-xs text-muted file:mr-3 file:rounded file:border file:border-cyan/70 file:bg-transparent file:px-2 file:py-1 file:font-mono file:text-xs file:text-cyan hover:file:bg-cyan/10"
        />
      </div>
      {files.length > 0 ? (
        <ul aria-label="Picked files" className="flex flex-col gap-1">
          {files.map((file, index) => (
            <li
              key={file.path}
              className={`flex items-center gap-2 rounded border px-2 py-1 font-mono text-xs ${index === invalidIndex ? 'border-danger/70 text-danger' : 'border-edge text-ink'}`}
            >
              <span className="min-w-0 flex-1 truncate" title={file.path}>
                {file.path}
              </span>
              <span className="text-muted">{formatBytes(file.size)}</span>
              <button
                type="button"
                onClick={() => onRemove(file.path)}
                aria-label={`Remove ${file.path}`}
                className="rounded px-1 text-muted hover:bg-danger/10 hover:text-danger"
              >
                ✕
              </button>
            </li>
          ))}
        </ul>
      ) : (
        <p className="font-mono text-xs text-muted">
          None. Picked files are placed in the program's working directory; what it writes under <code>outputs/</code> comes back.
        </p>
      )}
      {problem}
    </div>
  )
}

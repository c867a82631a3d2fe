// Local files picked in the page, as the API takes them: {path, content_base64}, plus their size to show.
import type { InputFile } from './api/client'
import { readDataUrl } from './dataUrl'

export interface PickedFile extends InputFile {
  size: number
}

/** Reads a file picked in the page; its name becomes its path in the program's working directory. */
export async function readPickedFile(file: File): Promise<PickedFile> {
  const url = await readDataUrl(file)
  // The part after the comma is the base64 the API wants.
  return { path: file.name, size: file.size, content_base64: url.slice(url.indexOf(',') + 1) }
}

/** A file of a reopened execution: its size is what its base64 decodes to. */
export function pickedFromInput(file: InputFile): PickedFile {
  const b64 = file.content_base64
  const padding = b64.endsWith('==') ? 2 : b64.endsWith('=') ? 1 : 0
  return { ...file, size: Math.max(0, (b64.length / 4) * 3 - padding) }
}

/** Adds newly picked files; one picked again under the same name replaces the earlier one (paths are distinct). */
export function withPicked(current: PickedFile[], picked: PickedFile[]): PickedFile[] {
  const names = new Set(picked.map((file) => file.path))
  return [...current.filter((file) => !names.has(file.path)), ...picked]
}

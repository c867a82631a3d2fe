/** A blob (a picked File, a fetched artifact) as a data: URL, "data:<type>;base64,<bytes>". */
export function readDataUrl(blob: Blob): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader()
    reader.onload = () => resolve(reader.result as string) // readAsDataURL always yields a string
    reader.onerror = () => reject(reader.error ?? new Error('cannot read the file'))
    reader.readAsDataURL(blob)
  })
}

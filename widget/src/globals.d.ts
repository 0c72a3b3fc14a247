/** The widget's version (package.json), set by the build. */
declare const __VERSION__: string;
/** Subresource Integrity of each chunk the loader may load, set by the build. */
declare const __CHUNKS__: Record<string, { file: string; integrity: string }>;
/** A stylesheet, as the build minifies it. */
declare module '*.css' {
  const css: string;
  export default css;
}

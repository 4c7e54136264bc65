// Vite's `?raw` suffix imports a fixture file as a string (workerd cannot read files at test time).
declare module "*?raw" {
  const text: string;
  export default text;
}

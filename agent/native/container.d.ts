export interface NativeContainer {}

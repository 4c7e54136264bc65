export interface NativeFs {}

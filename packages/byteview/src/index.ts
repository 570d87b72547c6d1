export { ByteView, type ByteViewLike } from "./byteview.js";

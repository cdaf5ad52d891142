/**
 * @module archive/layout-names
 * Fixed names of the OCI image layout (image-spec image-layout.md, annotations.md).
 */

export const layoutVersion = '1.0.0';
export const refNameAnnotation = 'org.opencontainers.image.ref.name';
export const layoutFile = 'oci-layout';
export const indexFile = 'index.json';

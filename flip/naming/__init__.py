"""Face naming: label each face of an image with a name from its caption, or with no name (issue 7).

`detect` finds faces, `names` finds person names in captions, `align` scores and assigns faces to
names, `secla` learns the alignment from image-caption pairs alone (SECLA and SECLA-B, papers.md).
Nothing is imported here, so `import flip.naming.names` does not pull in OpenCV or torch.
"""

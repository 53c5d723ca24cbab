// Command images builds OCI image tarballs from static binaries, without a
// container engine, for the e2e cluster (hack/e2e/cluster.sh imports them
// into its containerd with `ctr images import`).
//
// Each image is what the Dockerfile's distroless targets hold for our
// binaries: one layer with the binary, /etc/passwd and /etc/group naming
// the nonroot user 65532, a sticky /tmp and nonroot's home; no shell; the
// config runs the binary as 65532:65532.
//
// Usage:
//
//	images -o out.tar -ref popconnect.local/popconnect-gateway:e2e -bin bin/gateway=/gateway
//
// -bin may be repeated; the first one is the entrypoint.
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

type binFlag []string

func (b *binFlag) String() string     { return strings.Join(*b, ",") }
func (b *binFlag) Set(v string) error { *b = append(*b, v); return nil }

const (
	nonrootUID = 65532
	passwd     = "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	group      = "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n"
)

// epoch keeps the layers reproducible: the same binaries give the same digest.
var epoch = time.Unix(0, 0).UTC()

func main() {
	var (
		out  = flag.String("o", "", "the image tarball to write")
		ref  = flag.String("ref", "", "the image reference to tag it with")
		bins binFlag
	)
	flag.Var(&bins, "bin", "host-path=/image-path of a binary; repeatable, the first is the entrypoint")
	flag.Parse()
	if *out == "" || *ref == "" || len(bins) == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := build(*out, *ref, bins); err != nil {
		fmt.Fprintf(os.Stderr, "images: %v\n", err)
		os.Exit(1)
	}
}

func build(out, ref string, bins []string) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("image reference %q: %w", ref, err)
	}
	layer, entrypoint, err := rootfs(bins)
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		return fmt.Errorf("append layer: %w", err)
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	user := fmt.Sprintf("%d:%d", nonrootUID, nonrootUID)
	cfg, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture, cfg.OS = "amd64", "linux"
	cfg.Created = v1.Time{Time: epoch}
	cfg.Config = v1.Config{
		Entrypoint: []string{entrypoint},
		User:       user,
		WorkingDir: "/",
		Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin"},
		Labels:     map[string]string{"org.opencontainers.image.title": tag.RepositoryStr()},
	}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return tarball.WriteToFile(out, tag, img)
}

// rootfs returns the one layer of the image and the entrypoint's path.
func rootfs(bins []string) (v1.Layer, string, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(path string, mode int64, uid int) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: path + "/", Mode: mode, Uid: uid, Gid: uid, ModTime: epoch})
	}
	file := func(path string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: path, Mode: mode, Size: int64(len(data)), ModTime: epoch}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	steps := []func() error{
		func() error { return dir("etc", 0o755, 0) },
		func() error { return file("etc/passwd", 0o644, []byte(passwd)) },
		func() error { return file("etc/group", 0o644, []byte(group)) },
		func() error { return dir("home", 0o755, 0) },
		func() error { return dir("home/nonroot", 0o700, nonrootUID) },
		func() error { return dir("tmp", 0o1777, 0) },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return nil, "", err
		}
	}
	entrypoint := ""
	for _, b := range bins {
		host, inImage, ok := strings.Cut(b, "=")
		if !ok || !strings.HasPrefix(inImage, "/") || strings.Count(inImage, "/") != 1 {
			return nil, "", fmt.Errorf("-bin %q: want host-path=/name (a file in the image's root)", b)
		}
		data, err := os.ReadFile(host)
		if err != nil {
			return nil, "", err
		}
		if err := file(strings.TrimPrefix(inImage, "/"), 0o755, data); err != nil {
			return nil, "", err
		}
		if entrypoint == "" {
			entrypoint = inImage
		}
	}
	if err := tw.Close(); err != nil {
		return nil, "", err
	}
	data := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, "", fmt.Errorf("layer: %w", err)
	}
	return layer, entrypoint, nil
}

package tests

import (
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// sha512Secret is the password of device sdev, stored as SHA-512 crypt (made with Python's crypt).
const sha512Hash = "$6$saltsalt$d574LmfMyQnEYNioegmwjPSZf7ow4NFX5FZoc2y2bcS40Ewc554K6V9ItMeLzi8a1/cxWnKeK1p9.I8yzxa2y0"

var (
	bcryptOnce sync.Once
	bcryptHash string
)

// testRegistry returns the registry most end-to-end tests run with.
func testRegistry(t testing.TB) string {
	t.Helper()
	bcryptOnce.Do(func() {
		h, err := bcrypt.GenerateFromPassword([]byte("bcrypt-secret"), bcrypt.MinCost)
		if err != nil {
			panic(err)
		}
		bcryptHash = string(h)
	})
	return strings.ReplaceAll(registryYAML, "BCRYPT_HASH", bcryptHash)
}

const registryYAML = `
kind: Application
metadata: {name: app1, uid: uid-app1}
---
kind: Device
metadata: {name: device1, application: app1, uid: uid-device1}
spec:
  authentication:
    credentials:
      - pass: secret1
---
kind: Device
metadata: {name: bdev, application: app1}
spec:
  authentication:
    credentials:
      - pass: {bcrypt: "BCRYPT_HASH"}
---
kind: Device
metadata: {name: sdev, application: app1}
spec:
  authentication:
    credentials:
      - pass: {sha512: "` + sha512Hash + `"}
---
kind: Device
metadata: {name: udev, application: app1, uid: uid-udev}
spec:
  alias: [udev-alias]
  credentials:
    credentials:
      - user: {username: uname, password: upass, unique: true}
---
kind: Device
metadata: {name: gateway1, application: app1, uid: uid-gw1}
spec:
  alias: [gw-alias]
  authentication:
    credentials:
      - pass: gwsecret
---
kind: Device
metadata: {name: my-dev_1, application: app1, uid: uid-mydev}
spec:
  gatewaySelector:
    matchNames: [gateway1]
---
kind: Device
metadata: {name: dev-by-alias, application: app1}
spec:
  alias: [dba]
  gatewaySelector:
    matchNames: [gw-alias]
---
kind: Device
metadata: {name: lonely, application: app1}
spec:
  authentication:
    credentials:
      - pass: lonely
---
kind: Device
metadata: {name: off-dev, application: app1}
spec:
  core: {disabled: true}
  authentication:
    credentials:
      - pass: "off"
---
kind: Device
metadata: {name: dev/x, application: app1}
spec:
  authentication:
    credentials:
      - pass: px
---
kind: Application
metadata: {name: offapp}
spec:
  core: {disabled: true}
---
kind: Device
metadata: {name: device1, application: offapp}
spec:
  authentication:
    credentials:
      - pass: secret1
---
kind: Application
metadata: {name: app2}
---
kind: Device
metadata: {name: device1, application: app2}
spec:
  authentication:
    credentials:
      - pass: secret2
---
kind: Application
metadata: {name: plain-app}
spec:
  mqtt: {dialect: {type: plainTopic, devicePrefix: true}}
---
kind: Device
metadata: {name: sensor1, application: plain-app}
spec:
  authentication:
    credentials:
      - pass: s1
---
kind: Device
metadata: {name: sensor2, application: plain-app}
spec:
  gatewaySelector:
    matchNames: [sensor1]
---
kind: Device
metadata: {name: v1dev, application: plain-app}
spec:
  mqtt: {dialect: {type: drogue/v1}}
  authentication:
    credentials:
      - pass: v1
---
kind: Application
metadata: {name: plain-whole}
spec:
  mqtt: {dialect: {type: plainTopic}}
---
kind: Device
metadata: {name: p1, application: plain-whole}
spec:
  authentication:
    credentials:
      - pass: p1
`

package uploader

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Credentials are the ways to sign beyond Config.AccessKey/SecretKey, each through the SDK's own
// provider. Without any of them (and without keys) the SDK's default chain applies: environment,
// shared files, web identity (IRSA: AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN), container and
// instance roles.
type Credentials struct {
	// SessionToken goes with AccessKey/SecretKey (temporary credentials).
	SessionToken string
	// Profile is a profile of the shared config and credentials files (AWS_CONFIG_FILE,
	// AWS_SHARED_CREDENTIALS_FILE, or ~/.aws/config and ~/.aws/credentials).
	Profile string
	// RoleARN is assumed with STS: AssumeRole signed with the credentials above (keys, profile or
	// the default chain), or AssumeRoleWithWebIdentity when WebIdentityTokenFile is set. The SDK
	// refreshes the role's credentials before they expire.
	RoleARN, ExternalID, SessionName string
	WebIdentityTokenFile             string
	// STSEndpoint replaces AWS's STS endpoint (an S3-compatible server's own STS, e.g. MinIO's);
	// empty: the region's, or AWS_ENDPOINT_URL_STS.
	STSEndpoint string
}

// assumeRole replaces cfg's credentials with the role's, when RoleARN is set. It makes no request.
func (c Credentials) assumeRole(cfg *aws.Config) {
	if c.RoleARN == "" {
		return
	}
	client := sts.NewFromConfig(*cfg, func(o *sts.Options) {
		if c.STSEndpoint != "" {
			o.BaseEndpoint = aws.String(c.STSEndpoint)
		}
	})
	var p aws.CredentialsProvider
	if c.WebIdentityTokenFile != "" {
		p = stscreds.NewWebIdentityRoleProvider(client, c.RoleARN, stscreds.IdentityTokenFile(c.WebIdentityTokenFile),
			func(o *stscreds.WebIdentityRoleOptions) { o.RoleSessionName = c.SessionName })
	} else {
		p = stscreds.NewAssumeRoleProvider(client, c.RoleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = c.SessionName
			if c.ExternalID != "" {
				o.ExternalID = aws.String(c.ExternalID)
			}
		})
	}
	cfg.Credentials = aws.NewCredentialsCache(p)
}

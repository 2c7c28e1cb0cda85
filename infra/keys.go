package main

// keys.go: the customer managed KMS keys. Every key is symmetric, rotated
// yearly by KMS and named by an alias under alias/<prefix>/. A siloed
// tenant's key is made by its own stack (tenants.go) with newKey.

import (
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// Keys are the stack's KMS keys.
type Keys struct {
	// Table encrypts the single table (DynamoDB encryption at rest with a
	// customer managed key): the functions use it only through DynamoDB.
	Table awskms.Key
	// DataKeys wraps the data keys of the pooled tenants' secrets at rest
	// (SWITCHBOARD_KMS_KEY_ID, ADR 0006): the functions may only generate
	// and decrypt data keys with it.
	DataKeys awskms.Key
	// Alarms encrypts the alarm topic; CloudWatch may publish to it.
	Alarms awskms.Key
}

// KeyAlias is the alias of a key of this deployment: alias/<prefix>/<name>.
func KeyAlias(prefix, name string) string { return "alias/" + prefix + "/" + name }

// newKeys makes the stack's keys at the stack's top level (stable logical ids).
func newKeys(scope constructs.Construct, cfg Config) *Keys {
	k := &Keys{
		Table: newKey(scope, "TableKey", cfg, KeyAlias(cfg.NamePrefix, "table"),
			"Switchboard: encrypts the single DynamoDB table"),
		DataKeys: newKey(scope, "DataKeys", cfg, KeyAlias(cfg.NamePrefix, "data-keys"),
			"Switchboard: wraps the pooled tenants' data keys of secrets at rest"),
		Alarms: newKey(scope, "AlarmsKey", cfg, KeyAlias(cfg.NamePrefix, "alarms"),
			"Switchboard: encrypts the alarm topic"),
	}
	// CloudWatch alarms publish to an encrypted topic only when the key lets
	// CloudWatch make and open the topic's data keys.
	k.Alarms.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("AllowCloudWatchAlarmsToPublish"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("cloudwatch.amazonaws.com"), nil)},
		Actions:    jsii.Strings("kms:Decrypt", "kms:GenerateDataKey*"),
		Resources:  jsii.Strings("*"),
	}), nil)
	return k
}

// newKey is a symmetric key with yearly rotation, the data removal policy
// and an alias.
func newKey(scope constructs.Construct, id string, cfg Config, alias, description string) awskms.Key {
	return awskms.NewKey(scope, jsii.String(id), &awskms.KeyProps{
		Description:       jsii.String(description),
		Alias:             jsii.String(alias),
		EnableKeyRotation: jsii.Bool(true),
		RemovalPolicy:     cfg.RemovalPolicy(),
	})
}

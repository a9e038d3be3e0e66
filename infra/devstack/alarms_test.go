package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestTemplateAlarms checks that template.yaml alarms on every dead-letter
// queue holding a message and on every function's errors and throttles
// (5-minute periods, above 0), and that each alarm notifies the optional
// AlarmTopicArn only when it is set.
func TestTemplateAlarms(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := os.ReadFile(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	type dimension struct {
		Name  string    `yaml:"Name"`
		Value yaml.Node `yaml:"Value"`
	}
	var doc struct {
		Parameters map[string]struct {
			Default *string `yaml:"Default"`
		} `yaml:"Parameters"`
		Conditions map[string]yaml.Node `yaml:"Conditions"`
		Resources  map[string]struct {
			Type       string `yaml:"Type"`
			Properties struct {
				RedrivePolicy struct {
					DeadLetterTargetArn yaml.Node `yaml:"deadLetterTargetArn"`
				} `yaml:"RedrivePolicy"`
				Namespace          string      `yaml:"Namespace"`
				MetricName         string      `yaml:"MetricName"`
				Dimensions         []dimension `yaml:"Dimensions"`
				Statistic          string      `yaml:"Statistic"`
				Period             int         `yaml:"Period"`
				Threshold          float64     `yaml:"Threshold"`
				ComparisonOperator string      `yaml:"ComparisonOperator"`
				TreatMissingData   string      `yaml:"TreatMissingData"`
				AlarmActions       yaml.Node   `yaml:"AlarmActions"`
			} `yaml:"Properties"`
		} `yaml:"Resources"`
	}
	if err := yaml.Unmarshal(tmpl, &doc); err != nil {
		t.Fatal(err)
	}
	if p, ok := doc.Parameters["AlarmTopicArn"]; !ok || p.Default == nil || *p.Default != "" {
		t.Errorf("AlarmTopicArn parameter missing or not optional (default \"\")")
	}
	if _, ok := doc.Conditions["HasAlarmTopic"]; !ok {
		t.Errorf("no HasAlarmTopic condition")
	}

	// What must be watched: every dead-letter queue, every function.
	want := map[string]bool{}
	for id, r := range doc.Resources {
		switch r.Type {
		case "AWS::SQS::Queue":
			if dlq := r.Properties.RedrivePolicy.DeadLetterTargetArn; dlq.Tag == "!GetAtt" {
				want["AWS/SQS ApproximateNumberOfMessagesVisible "+strings.TrimSuffix(dlq.Value, ".Arn")] = true
			}
		case "AWS::Serverless::Function":
			want["AWS/Lambda Errors "+id] = true
			want["AWS/Lambda Throttles "+id] = true
		}
	}
	if len(want) < 3+2*5 {
		t.Fatalf("found only %d things to watch: %v", len(want), want)
	}
	for id, r := range doc.Resources {
		if r.Type != "AWS::CloudWatch::Alarm" {
			continue
		}
		p := r.Properties
		if len(p.Dimensions) != 1 {
			t.Errorf("%s: dimensions %+v, want one", id, p.Dimensions)
			continue
		}
		target := strings.TrimSuffix(p.Dimensions[0].Value.Value, ".QueueName")
		key := p.Namespace + " " + p.MetricName + " " + target
		if !want[key] {
			t.Errorf("%s watches %s, which is not a DLQ depth or a function's errors/throttles (or is watched twice)", id, key)
			continue
		}
		delete(want, key)
		if p.Period != 300 || p.Threshold != 0 || p.ComparisonOperator != "GreaterThanThreshold" || p.TreatMissingData != "notBreaching" {
			t.Errorf("%s: period %d threshold %v %s missing=%s; want 300 s, > 0, missing data not breaching", id, p.Period, p.Threshold, p.ComparisonOperator, p.TreatMissingData)
		}
		if a := p.AlarmActions; a.Tag != "!If" || len(a.Content) != 3 || a.Content[0].Value != "HasAlarmTopic" {
			t.Errorf("%s: AlarmActions is not !If [HasAlarmTopic, ...]", id)
		}
	}
	for key := range want {
		t.Errorf("no alarm on %s", key)
	}
}

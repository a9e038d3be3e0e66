// Command awsfloor is the size and cold-start floor of the webhook
// function's AWS work, for make bench-cold: the smallest Lambda that makes
// the calls a new delivery needs with the SDK clients forgelink is built on
// (a DynamoDB read, a conditional DynamoDB write, a KMS decrypt, an SQS
// send), on an aws.Config built from the Lambda environment as awsenv
// builds it. ../shared/perf/coldstart/sdk-direct constructs the same three
// clients but calls nothing, so the linker drops every operation and the
// SDK's request pipeline (signing, retries, the JSON protocol); this floor
// keeps them. It does nothing useful when invoked.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

func main() {
	cfg := aws.Config{
		Region:      os.Getenv("AWS_REGION"),
		Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), os.Getenv("AWS_SESSION_TOKEN"))),
	}
	db, queue, keys := dynamodb.NewFromConfig(cfg), sqs.NewFromConfig(cfg), kms.NewFromConfig(cfg)
	lambda.Start(func(ctx context.Context, r events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		key := map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: r.RawPath}}
		fail := events.APIGatewayV2HTTPResponse{StatusCode: 500}
		if _, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("hooks"), Key: key}); err != nil {
			return fail, nil
		}
		if _, err := keys.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: []byte(r.Body)}); err != nil {
			return fail, nil
		}
		if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("deliveries"), Item: key, ConditionExpression: aws.String("attribute_not_exists(pk)")}); err != nil {
			return fail, nil
		}
		if _, err := queue.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(os.Getenv("QUEUE_URL")), MessageBody: aws.String(r.Body)}); err != nil {
			return fail, nil
		}
		return events.APIGatewayV2HTTPResponse{StatusCode: 202}, nil
	})
}
